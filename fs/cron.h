/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Cron patterns for scheduled backups: parse a standard 5-field pattern
 * (minute hour day-of-month month day-of-week) or a macro, and find the
 * next or previous time it fires.
 *
 * Syntax, per field: "*", a number, a range "a-b", any of those followed
 * by a step "/n" ("a/n" means a-max/n), and comma lists of those.
 * Months may be named JAN-DEC, days of the week SUN-SAT (any case, also
 * in ranges); day of week 0 and 7 are both Sunday.  Macros: @hourly,
 * @daily (= @midnight), @weekly, @monthly, @yearly (= @annually).
 * Nothing else: no @reboot, no seconds or year field, no "?", "L", "W"
 * or "#".
 *
 * Semantics are Vixie cron's: when both the day-of-month and the
 * day-of-week field are restricted (neither starts with "*"), a day
 * matches if either matches; otherwise both must match.  Times are UTC
 * seconds: no time zones, no DST.
 *
 * A parsed pattern is a plain value, immutable once parsed: copy it,
 * embed it, share it between threads.  All functions are reentrant.
 */
#ifndef BFS_CRON_H
#define BFS_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Longest accepted pattern text, after trimming, plus its NUL. */
#define BFS_CRON_TEXT_MAX 256

/*
 * How far next/prev search.  The Gregorian calendar, weekdays included,
 * repeats exactly every 400 years (146097 days, 20871 weeks), so a
 * pattern that fires at all fires within any 400-year window.  8 years
 * (the longest gap between two Feb 29ths, 2096 to 2104) is not enough:
 * with day of month 29, month 2 and day of week "*" stepped by 7 (just
 * Sunday, but it starts with "*", so both days must match) the pattern
 * fires on a Feb 29 that is a Sunday: every 28 years, and after 2088
 * not until 2128.
 */
#define BFS_CRON_SEARCH_YEARS 401

struct bfs_cron {
	uint64_t minutes; /* bit m: minute m, 0-59 */
	uint32_t hours;	  /* bit h: hour h, 0-23 */
	uint32_t days;	  /* bit d-1: day of month d, 1-31 */
	uint16_t months;  /* bit m-1: month m, 1-12 (JAN = 1) */
	uint8_t weekdays; /* bit w: day of week w, 0-6 (SUN = 0) */
	bool dom_star;	  /* the day-of-month field starts with "*" */
	bool dow_star;	  /* the day-of-week field starts with "*" */
	char text[BFS_CRON_TEXT_MAX]; /* canonical text, see bfs_cron_text */
};

/*
 * Parse text into *c: 0, or -EINVAL with a one-line reason in err (may be
 * NULL; errlen 0 writes nothing), e.g.
 * "field 2 (hour): 24 is out of range 0-23".  On error *c is unspecified.
 */
int bfs_cron_parse(struct bfs_cron *c, const char *text, char *err,
		   size_t errlen);

/*
 * The pattern as parsed, for display: surrounding blanks trimmed, fields
 * joined by one space, names in upper case, macros in lower case
 * ("mon-fri" -> "MON-FRI", "@Daily" -> "@daily").  Borrowed: valid as
 * long as *c.  Parsing the canonical text gives the same pattern.
 */
const char *bfs_cron_text(const struct bfs_cron *c);

/*
 * The first fire time strictly after `after`: second 0 of a matching
 * minute.  0, -ENOENT if the pattern can never fire (e.g. "0 0 30 2 *"),
 * -EOVERFLOW if the answer (or `after` itself) is beyond what
 * gmtime_r/time_t can represent, or -EINVAL if a field of *c is empty or
 * out of range (not a struct bfs_cron_parse made).  Costs microseconds:
 * the search skips whole months and days, and gives up after
 * BFS_CRON_SEARCH_YEARS (under a millisecond).
 */
int bfs_cron_next(const struct bfs_cron *c, time_t after, time_t *next);

/*
 * The most recent fire time at or before `at_or_before` (a fire time
 * equal to it counts): what a start-up catch-up of a missed slot wants.
 * Same returns as bfs_cron_next.
 */
int bfs_cron_prev(const struct bfs_cron *c, time_t at_or_before, time_t *prev);

#endif
