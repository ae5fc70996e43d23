// SPDX-License-Identifier: Apache-2.0
#include "check.h"
#include "cron.h"
#include "manifest.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

/* Helpers. */

static time_t ts(const char *s)
{
	int64_t t = 0;

	if (bfs_timestamp_parse(s, &t)) {
		fprintf(stderr, "bad timestamp in a test: %s\n", s);
		check_failed_now = 1;
	}
	return (time_t)t;
}

/* Like bfs_timestamp_format, without its clamp to the epoch. */
static const char *fmt(time_t t, char out[64])
{
	struct tm tm;

	if (!gmtime_r(&t, &tm))
		snprintf(out, 64, "(time %lld)", (long long)t);
	else
		strftime(out, 64, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return out;
}

static bool parse_ok(int line, struct bfs_cron *c, const char *pat)
{
	char err[256] = "";

	if (bfs_cron_parse(c, pat, err, sizeof(err)) == 0)
		return true;
	fprintf(stderr, "%s:%d: parse \"%s\": %s\n", __FILE__, line, pat, err);
	check_failed_now = 1;
	return false;
}

/* One next or prev query against its expected answer (NULL: -ENOENT). */
static void check_one(int line, bool up, const char *pat, time_t from,
		      const char *want)
{
	struct bfs_cron c;
	char got[64], a[64];
	time_t t = 0;
	int ret;

	if (!parse_ok(line, &c, pat))
		return;
	ret = up ? bfs_cron_next(&c, from, &t) : bfs_cron_prev(&c, from, &t);
	if (ret)
		snprintf(got, sizeof(got), "error %d", ret);
	else
		fmt(t, got);
	if (want ? !strcmp(got, want) : ret == -ENOENT)
		return;
	fprintf(stderr, "%s:%d: %s(\"%s\", %s) = %s, want %s\n", __FILE__, line,
		up ? "next" : "prev", pat, fmt(from, a), got,
		want ? want : "-ENOENT");
	check_failed_now = 1;
}

#define NEXT(pat, from, want) check_one(__LINE__, true, pat, ts(from), want)
#define PREV(pat, from, want) check_one(__LINE__, false, pat, ts(from), want)

static void check_reject(int line, const char *pat, const char *want)
{
	struct bfs_cron c;
	char err[256] = "";
	int ret = bfs_cron_parse(&c, pat, err, sizeof(err));

	if (ret == -EINVAL && !strcmp(err, want))
		return;
	fprintf(stderr,
		"%s:%d: parse \"%s\" = %d \"%s\", want -EINVAL \"%s\"\n",
		__FILE__, line, pat ? pat : "(null)", ret, err, want);
	check_failed_now = 1;
}

#define REJECT(pat, want) check_reject(__LINE__, pat, want)

/* Parsing: what lands in the bitsets. */

static void test_parse_bits(void)
{
	struct bfs_cron c;

	CHECK(parse_ok(__LINE__, &c, "* * * * *"));
	CHECK(c.minutes == (1ull << 60) - 1);
	CHECK_EQ(c.hours, (1u << 24) - 1);
	CHECK_EQ(c.days, 0x7fffffffu);
	CHECK_EQ(c.months, 0xfff);
	CHECK_EQ(c.weekdays, 0x7f);
	CHECK(c.dom_star && c.dow_star);

	CHECK(parse_ok(__LINE__, &c, "5-59/20 0-23/6 31 1 0"));
	CHECK(c.minutes == (1ull << 5 | 1ull << 25 | 1ull << 45));
	CHECK_EQ(c.hours, 1u << 0 | 1u << 6 | 1u << 12 | 1u << 18);
	CHECK_EQ(c.days, 1u << 30);
	CHECK_EQ(c.months, 1);
	CHECK_EQ(c.weekdays, 1);
	CHECK(!c.dom_star && !c.dow_star);

	/* "a/n" runs to the maximum */
	CHECK(parse_ok(__LINE__, &c, "30/10 20/2 25/3 10/1 5/1"));
	CHECK(c.minutes == (1ull << 30 | 1ull << 40 | 1ull << 50));
	CHECK_EQ(c.hours, 1u << 20 | 1u << 22);
	CHECK_EQ(c.days, 1u << 24 | 1u << 27 | 1u << 30);
	CHECK_EQ(c.months, 0xe00);
	CHECK_EQ(c.weekdays, 1 << 5 | 1 << 6 | 1 << 0); /* 5, 6, 7 */

	/* lists mixing all forms, names mixed with numbers */
	CHECK(parse_ok(__LINE__, &c,
		       "0,15,40-42 1,3-4 1,15-16 JAN,3,jul-Sep 1-fri"));
	CHECK(c.minutes == (1ull | 1ull << 15 | 7ull << 40));
	CHECK_EQ(c.hours, 1u << 1 | 1u << 3 | 1u << 4);
	CHECK_EQ(c.days, 1u | 3u << 14);
	CHECK_EQ(c.months, 1 | 1 << 2 | 7 << 6);
	CHECK_EQ(c.weekdays, 0x3e);

	/* day of week: 7 is Sunday, and a step over "*" counts 0-7 */
	CHECK(parse_ok(__LINE__, &c, "0 0 * * 7"));
	CHECK_EQ(c.weekdays, 1);
	CHECK(parse_ok(__LINE__, &c, "0 0 * * 0-7"));
	CHECK_EQ(c.weekdays, 0x7f);
	CHECK(parse_ok(__LINE__, &c, "0 0 * * */2"));
	CHECK_EQ(c.weekdays, 0x55);
	CHECK(c.dow_star);
	CHECK(parse_ok(__LINE__, &c, "0 0 * * sun-SAT"));
	CHECK_EQ(c.weekdays, 0x7f);
	CHECK(!c.dow_star);

	/* the star flags follow the text, as in Vixie cron */
	CHECK(parse_ok(__LINE__, &c, "0 0 */2 * *,1"));
	CHECK(c.dom_star && c.dow_star);
	CHECK_EQ(c.days, 0x55555555u);
	CHECK(parse_ok(__LINE__, &c, "0 0 1-31 * 0-6"));
	CHECK(!c.dom_star && !c.dow_star);
	CHECK_EQ(c.days, 0x7fffffffu);

	/* leading zeros are numbers like any other */
	CHECK(parse_ok(__LINE__, &c, "05 007 01 01 00"));
	CHECK(c.minutes == 1ull << 5);
	CHECK_EQ(c.hours, 1u << 7);
}

static void test_parse_whitespace(void)
{
	struct bfs_cron c;

	CHECK(parse_ok(__LINE__, &c, "  \t0 0\t * *  * \n"));
	CHECK(!strcmp(bfs_cron_text(&c), "0 0 * * *"));
	CHECK(parse_ok(__LINE__, &c, "\n@daily\r\n"));
	CHECK(!strcmp(bfs_cron_text(&c), "@daily"));
}

static void same_pattern(int line, const char *a, const char *b)
{
	struct bfs_cron x, y;

	if (!parse_ok(line, &x, a) || !parse_ok(line, &y, b))
		return;
	if (x.minutes == y.minutes && x.hours == y.hours && x.days == y.days &&
	    x.months == y.months && x.weekdays == y.weekdays &&
	    x.dom_star == y.dom_star && x.dow_star == y.dow_star)
		return;
	fprintf(stderr, "%s:%d: \"%s\" and \"%s\" differ\n", __FILE__, line, a,
		b);
	check_failed_now = 1;
}

static void test_parse_equivalents(void)
{
	same_pattern(__LINE__, "@hourly", "0 * * * *");
	same_pattern(__LINE__, "@daily", "0 0 * * *");
	same_pattern(__LINE__, "@midnight", "0 0 * * *");
	same_pattern(__LINE__, "@weekly", "0 0 * * 0");
	same_pattern(__LINE__, "@monthly", "0 0 1 * *");
	same_pattern(__LINE__, "@yearly", "0 0 1 1 *");
	same_pattern(__LINE__, "@annually", "0 0 1 1 *");
	same_pattern(__LINE__, "@ANNUALLY", "@yearly");
	same_pattern(__LINE__, "0 0 * * 7", "0 0 * * 0");
	same_pattern(__LINE__, "0 0 * * 7", "0 0 * * sun");
	same_pattern(__LINE__, "0 0 * * MON-FRI", "0 0 * * 1-5");
	same_pattern(__LINE__, "0 0 * * mon-Fri", "0 0 * * 1,2,3,4,5");
	same_pattern(__LINE__, "0 0 * JAN,JUL *", "0 0 * 1,7 *");
	same_pattern(__LINE__, "0 0 * jan-dec/3 *", "0 0 * 1,4,7,10 *");
	same_pattern(__LINE__, "*/15 * * * *", "0,15,30,45 * * * *");
	same_pattern(__LINE__, "5-59/20 * * * *", "5,25,45 * * * *");
	same_pattern(__LINE__, "50/5 * * * *", "50-59/5 * * * *");
}

static void check_text(int line, const char *pat, const char *want)
{
	struct bfs_cron c, d;

	if (!parse_ok(line, &c, pat))
		return;
	if (strcmp(bfs_cron_text(&c), want)) {
		fprintf(stderr,
			"%s:%d: text of \"%s\" is \"%s\", want \"%s\"\n",
			__FILE__, line, pat, bfs_cron_text(&c), want);
		check_failed_now = 1;
	}
	/* the canonical text parses to the same pattern */
	if (parse_ok(line, &d, bfs_cron_text(&c)) && memcmp(&c, &d, sizeof(c)))
		check_failed_now = 1;
}

static void test_text(void)
{
	check_text(__LINE__, "0 9 * * mon-fri", "0 9 * * MON-FRI");
	check_text(__LINE__, " 0\t9  1 jan,Jul Sun ", "0 9 1 JAN,JUL SUN");
	check_text(__LINE__, "*/15 * * * *", "*/15 * * * *");
	check_text(__LINE__, "@Daily", "@daily");
	check_text(__LINE__, "  @MIDNIGHT ", "@midnight");
	check_text(__LINE__, "@annually", "@annually");
	check_text(__LINE__, "@yearly", "@yearly");
	check_text(__LINE__, "@hourly", "@hourly");
	check_text(__LINE__, "@weekly", "@weekly");
	check_text(__LINE__, "@monthly", "@monthly");
}

/* Rejections, each with its message. */

static void test_reject_shape(void)
{
	char long_pat[400];

	REJECT(NULL, "empty pattern");
	REJECT("", "empty pattern");
	REJECT(" \t\n ", "empty pattern");
	REJECT("* * * *", "expected 5 fields (minute hour day-of-month month "
			  "day-of-week), got 4");
	REJECT("0 0 * * * *", "expected 5 fields (minute hour day-of-month "
			      "month day-of-week), got 6");
	REJECT("0 0 * * * 2026", "expected 5 fields (minute hour "
				 "day-of-month month day-of-week), got 6");
	REJECT("0", "expected 5 fields (minute hour day-of-month month "
		    "day-of-week), got 1");
	memset(long_pat, ' ', sizeof(long_pat));
	memcpy(long_pat, "0 0 * * *", 9);
	memset(long_pat + 250, '1', 10);
	long_pat[sizeof(long_pat) - 1] = 0;
	REJECT(long_pat, "pattern is longer than 255 characters");
}

static void test_reject_macros(void)
{
	const char *unknown = " (expected @hourly, @daily, @midnight, "
			      "@weekly, @monthly, @yearly or @annually)";
	char want[256];

	snprintf(want, sizeof(want), "unknown macro \"@reboot\"%s", unknown);
	REJECT("@reboot", want);
	snprintf(want, sizeof(want), "unknown macro \"@\"%s", unknown);
	REJECT("@", want);
	snprintf(want, sizeof(want), "unknown macro \"@dailyx\"%s", unknown);
	REJECT("@dailyx", want);
	REJECT("@every 5m", "unexpected text after \"@every\"");
	REJECT("@daily 0", "unexpected text after \"@daily\"");
	REJECT("@hourly *", "unexpected text after \"@hourly\"");
}

static void test_reject_range(void)
{
	REJECT("60 * * * *", "field 1 (minute): 60 is out of range 0-59");
	REJECT("0 24 * * *", "field 2 (hour): 24 is out of range 0-23");
	REJECT("* * 0 * *", "field 3 (day-of-month): 0 is out of range 1-31");
	REJECT("* * 32 * *", "field 3 (day-of-month): 32 is out of range 1-31");
	REJECT("* * * 0 *", "field 4 (month): 0 is out of range 1-12");
	REJECT("* * * 13 *", "field 4 (month): 13 is out of range 1-12");
	REJECT("* * * * 8", "field 5 (day-of-week): 8 is out of range 0-7");
	REJECT("1-60 * * * *", "field 1 (minute): 60 is out of range 0-59");
	REJECT("0 0 1,2,99 * *",
	       "field 3 (day-of-month): 99 is out of range 1-31");
	REJECT("99999999999999999999 * * * *",
	       "field 1 (minute): 99999999999999999999 is out of range 0-59");
	REJECT("30-10 * * * *", "field 1 (minute): range 30-10 is reversed");
	REJECT("* 5-4 * * *", "field 2 (hour): range 5-4 is reversed");
	REJECT("* * * DEC-JAN *", "field 4 (month): range DEC-JAN is reversed");
	REJECT("* * * * FRI-MON",
	       "field 5 (day-of-week): range FRI-MON is reversed");
	REJECT("* * * * SAT-SUN",
	       "field 5 (day-of-week): range SAT-SUN is reversed");
	REJECT("* * * * 7-1", "field 5 (day-of-week): range 7-1 is reversed");
}

static void test_reject_step(void)
{
	REJECT("*/0 * * * *", "field 1 (minute): step 0 is out of range 1-59");
	REJECT("1-5/0 * * * *",
	       "field 1 (minute): step 0 is out of range 1-59");
	REJECT("*/60 * * * *",
	       "field 1 (minute): step 60 is out of range 1-59");
	REJECT("* */24 * * *", "field 2 (hour): step 24 is out of range 1-23");
	REJECT("* * */32 * *",
	       "field 3 (day-of-month): step 32 is out of range 1-31");
	REJECT("* * * */13 *", "field 4 (month): step 13 is out of range 1-12");
	REJECT("* * * * */8",
	       "field 5 (day-of-week): step 8 is out of range 1-7");
	REJECT("*/ * * * *", "field 1 (minute): missing step in \"*/\"");
	REJECT("*/x * * * *", "field 1 (minute): unexpected \"x\" in \"*/x\"");
	REJECT("*/-1 * * * *",
	       "field 1 (minute): unexpected \"-\" in \"*/-1\"");
	REJECT("1-5/2/3 * * * *",
	       "field 1 (minute): unexpected \"/\" in \"1-5/2/3\"");
	REJECT("* * * JAN/FEB *",
	       "field 4 (month): unexpected \"F\" in \"JAN/FEB\"");
}

static void test_reject_syntax(void)
{
	REJECT("5x * * * *", "field 1 (minute): unexpected \"x\" in \"5x\"");
	REJECT("*-5 * * * *", "field 1 (minute): unexpected \"-\" in \"*-5\"");
	REJECT("** * * * *", "field 1 (minute): unexpected \"*\" in \"**\"");
	REJECT("-1 * * * *", "field 1 (minute): unexpected \"-\" in \"-1\"");
	REJECT("1-2-3 * * * *",
	       "field 1 (minute): unexpected \"-\" in \"1-2-3\"");
	REJECT("5- * * * *", "field 1 (minute): missing number in \"5-\"");
	REJECT("* * * JAN- *",
	       "field 4 (month): missing number or name in \"JAN-\"");
	REJECT("1,,2 * * * *", "field 1 (minute): empty list item in \"1,,2\"");
	REJECT(",1 * * * *", "field 1 (minute): empty list item in \",1\"");
	REJECT("* 1, * * *", "field 2 (hour): empty list item in \"1,\"");
	REJECT("* * , * *", "field 3 (day-of-month): empty list item in \",\"");
	REJECT("MON * * * *", "field 1 (minute): unexpected \"M\" in \"MON\"");
	REJECT("* * 1st * *",
	       "field 3 (day-of-month): unexpected \"s\" in \"1st\"");
	REJECT("* * * JANUARY *", "field 4 (month): unknown name \"JANUARY\"");
	REJECT("* * * FOO *", "field 4 (month): unknown name \"FOO\"");
	REJECT("* * * MON *", "field 4 (month): unknown name \"MON\"");
	REJECT("* * * * JAN", "field 5 (day-of-week): unknown name \"JAN\"");
	REJECT("* * * * MONDAY",
	       "field 5 (day-of-week): unknown name \"MONDAY\"");
	REJECT("* * * * MO", "field 5 (day-of-week): unknown name \"MO\"");
	REJECT("* * * * MON5",
	       "field 5 (day-of-week): unexpected \"5\" in \"MON5\"");
	/* Quartz and other extensions are not cron */
	REJECT("* * ? * *",
	       "field 3 (day-of-month): unexpected \"?\" in \"?\"");
	REJECT("* * L * *",
	       "field 3 (day-of-month): unexpected \"L\" in \"L\"");
	REJECT("* * 15W * *",
	       "field 3 (day-of-month): unexpected \"W\" in \"15W\"");
	REJECT("* * * * 5#3",
	       "field 5 (day-of-week): unexpected \"#\" in \"5#3\"");
	REJECT("* * * * 5L",
	       "field 5 (day-of-week): unexpected \"L\" in \"5L\"");
}

static void test_reject_odd_bytes(void)
{
	struct bfs_cron c;
	char err[16];

	REJECT("* * * * 1\x01",
	       "field 5 (day-of-week): unexpected byte 0x01 in \"1?\"");
	/* only spaces and tabs separate fields */
	REJECT("* * *\n* * *",
	       "field 3 (day-of-month): unexpected byte 0x0a in \"*?*\"");
	REJECT("* * * * 1\xc3\xa9",
	       "field 5 (day-of-week): unexpected byte 0xc3 in \"1??\"");
	/* long fields are cut in messages */
	REJECT("0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,x * * * *",
	       "field 1 (minute): unexpected \"x\" in "
	       "\"0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16...\"");
	/* no err buffer, or a short one */
	CHECK_EQ(bfs_cron_parse(&c, "61 * * * *", NULL, 0), -EINVAL);
	CHECK_EQ(bfs_cron_parse(&c, "61 * * * *", err, 0), -EINVAL);
	CHECK_EQ(bfs_cron_parse(&c, "61 * * * *", err, sizeof(err)), -EINVAL);
	CHECK(!strcmp(err, "field 1 (minute"));
}

/* next(): known answers, computed by hand. */

static void test_next_steps(void)
{
	NEXT("*/15 * * * *", "2026-01-01T00:00:00Z", "2026-01-01T00:15:00Z");
	NEXT("*/15 * * * *", "2026-01-01T00:14:59Z", "2026-01-01T00:15:00Z");
	NEXT("*/15 * * * *", "2026-01-01T00:15:00Z", "2026-01-01T00:30:00Z");
	NEXT("*/15 * * * *", "2026-01-01T00:45:00Z", "2026-01-01T01:00:00Z");
	NEXT("5-59/20 * * * *", "2026-01-01T10:45:00Z", "2026-01-01T11:05:00Z");
	NEXT("5-59/20 * * * *", "2026-01-01T10:05:30Z", "2026-01-01T10:25:00Z");
	NEXT("5-59/20 * * * *", "2026-01-01T10:04:59Z", "2026-01-01T10:05:00Z");
	NEXT("30/10 * * * *", "2026-01-01T10:50:00Z", "2026-01-01T11:30:00Z");
	NEXT("0 */6 * * *", "2026-01-01T18:00:00Z", "2026-01-02T00:00:00Z");
	NEXT("0 9-17/4 * * *", "2026-01-01T13:00:00Z", "2026-01-01T17:00:00Z");
	NEXT("0 9-17/4 * * *", "2026-01-01T17:00:00Z", "2026-01-02T09:00:00Z");
	NEXT("* * * * *", "2026-06-15T12:34:56Z", "2026-06-15T12:35:00Z");
	NEXT("* * * * *", "2026-06-15T12:34:00Z", "2026-06-15T12:35:00Z");
}

static void test_next_lists(void)
{
	NEXT("0,30 8,12-13 * * *", "2026-03-10T08:00:00Z",
	     "2026-03-10T08:30:00Z");
	NEXT("0,30 8,12-13 * * *", "2026-03-10T08:30:00Z",
	     "2026-03-10T12:00:00Z");
	NEXT("0,30 8,12-13 * * *", "2026-03-10T13:30:00Z",
	     "2026-03-11T08:00:00Z");
	NEXT("15 10 1,15,28-31 * *", "2026-02-15T10:15:00Z",
	     "2026-02-28T10:15:00Z");
	NEXT("15 10 1,15,28-31 * *", "2026-02-28T10:15:00Z",
	     "2026-03-01T10:15:00Z");
	NEXT("15 10 1,15,28-31 * *", "2026-03-28T10:15:00Z",
	     "2026-03-29T10:15:00Z");
}

static void test_next_month_ends(void)
{
	/* the 31st skips the 30-day months and February */
	NEXT("0 0 31 * *", "2026-01-31T00:00:00Z", "2026-03-31T00:00:00Z");
	NEXT("0 0 31 * *", "2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z");
	NEXT("0 0 31 * *", "2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z");
	NEXT("0 0 31 * *", "2026-07-31T00:00:00Z", "2026-08-31T00:00:00Z");
	NEXT("0 0 31 * *", "2026-08-31T00:00:00Z", "2026-10-31T00:00:00Z");
	NEXT("0 0 31 * *", "2026-10-31T00:00:00Z", "2026-12-31T00:00:00Z");
	NEXT("0 0 31 * *", "2026-12-31T00:00:00Z", "2027-01-31T00:00:00Z");
	NEXT("0 12 30 * *", "2026-01-30T12:00:00Z", "2026-03-30T12:00:00Z");
	NEXT("0 12 30 * *", "2028-01-30T12:00:00Z", "2028-03-30T12:00:00Z");
	NEXT("0 12 29 * *", "2026-01-29T12:00:00Z", "2026-03-29T12:00:00Z");
	NEXT("0 12 29 * *", "2028-01-29T12:00:00Z", "2028-02-29T12:00:00Z");
	NEXT("59 23 * * *", "2026-04-30T23:59:00Z", "2026-05-01T23:59:00Z");
}

static void test_next_leap(void)
{
	NEXT("0 0 29 2 *", "2026-01-01T00:00:00Z", "2028-02-29T00:00:00Z");
	NEXT("0 0 29 2 *", "2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z");
	NEXT("0 0 29 FEB *", "2028-02-28T23:59:59Z", "2028-02-29T00:00:00Z");
	/* 2100 is not a leap year, 2400 is: an 8-year gap, then 4 */
	NEXT("0 0 29 2 *", "2096-02-29T00:00:00Z", "2104-02-29T00:00:00Z");
	NEXT("0 0 29 2 *", "2396-02-29T00:00:00Z", "2400-02-29T00:00:00Z");
	NEXT("0 0 28 2 *", "2028-02-28T00:00:00Z", "2029-02-28T00:00:00Z");
	NEXT("0 0 * 2 *", "2028-02-28T00:00:00Z", "2028-02-29T00:00:00Z");
	NEXT("0 0 * 2 *", "2100-02-28T00:00:00Z", "2101-02-01T00:00:00Z");
	NEXT("0 0 1 3 *", "2100-02-28T12:00:00Z", "2100-03-01T00:00:00Z");
	NEXT("0 0 1 3 *", "2028-02-28T12:00:00Z", "2028-03-01T00:00:00Z");
}

static void test_next_year_wrap(void)
{
	NEXT("0 0 1 1 *", "2026-12-31T23:59:59Z", "2027-01-01T00:00:00Z");
	NEXT("0 0 1 1 *", "2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z");
	NEXT("59 23 31 12 *", "2026-12-31T23:59:00Z", "2027-12-31T23:59:00Z");
	NEXT("59 23 31 12 *", "2026-12-31T23:58:59Z", "2026-12-31T23:59:00Z");
	NEXT("* * * * *", "2026-12-31T23:59:30Z", "2027-01-01T00:00:00Z");
	NEXT("0 0 * NOV *", "2026-12-01T00:00:00Z", "2027-11-01T00:00:00Z");
}

static void test_next_names(void)
{
	/* 2026-01-01 is a Thursday */
	NEXT("0 9 * * MON-FRI", "2026-01-02T09:00:00Z", "2026-01-05T09:00:00Z");
	NEXT("0 9 * * mon-fri", "2026-01-05T08:59:59Z", "2026-01-05T09:00:00Z");
	NEXT("0 9 * * Mon-Fri", "2026-01-05T09:00:00Z", "2026-01-06T09:00:00Z");
	NEXT("0 0 * * SAT,SUN", "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z");
	NEXT("0 0 * * SAT,SUN", "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z");
	NEXT("0 0 * * SAT,SUN", "2026-01-04T00:00:00Z", "2026-01-10T00:00:00Z");
	NEXT("0 0 1 JAN,JUL *", "2026-01-01T00:00:00Z", "2026-07-01T00:00:00Z");
	NEXT("0 0 1 jan,Jul *", "2026-07-01T00:00:00Z", "2027-01-01T00:00:00Z");
	NEXT("0 0 1 MAR-MAY/2 *", "2026-03-01T00:00:00Z",
	     "2026-05-01T00:00:00Z");
}

static void test_next_sunday_7(void)
{
	NEXT("0 0 * * 7", "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z");
	NEXT("0 0 * * 0", "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z");
	NEXT("0 0 * * SUN", "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z");
	NEXT("0 0 * * 7", "2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z");
	NEXT("0 0 * * 5-7", "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z");
	NEXT("0 0 * * 5-7", "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z");
	NEXT("0 0 * * 5-7", "2026-01-04T00:00:00Z", "2026-01-09T00:00:00Z");
}

/* Both day fields restricted: either matches.  Otherwise: both. */
static void test_next_dom_dow(void)
{
	NEXT("0 0 13 * FRI", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z");
	NEXT("0 0 13 * FRI", "2026-01-09T00:00:00Z", "2026-01-13T00:00:00Z");
	NEXT("0 0 13 * FRI", "2026-01-13T00:00:00Z", "2026-01-16T00:00:00Z");
	/* Feb 29 or Monday: fires, even in a common year */
	NEXT("0 0 29 2 1", "2026-01-01T00:00:00Z", "2026-02-02T00:00:00Z");
	NEXT("0 0 29 2 MON", "2028-02-27T00:00:00Z", "2028-02-28T00:00:00Z");
	NEXT("0 0 29 2 MON", "2028-02-28T00:00:00Z", "2028-02-29T00:00:00Z");
	NEXT("0 0 29 2 MON", "2028-02-29T00:00:00Z", "2029-02-05T00:00:00Z");
	NEXT("0 0 30 2 MON", "2026-01-01T00:00:00Z", "2026-02-02T00:00:00Z");
	NEXT("0 0 1 * 1", "2026-01-01T00:00:00Z", "2026-01-05T00:00:00Z");
	/* "*" in one field: both must match */
	NEXT("0 0 * * FRI", "2026-01-02T00:00:00Z", "2026-01-09T00:00:00Z");
	NEXT("0 0 13 * *", "2026-01-02T00:00:00Z", "2026-01-13T00:00:00Z");
	/* a stepped "*" counts as "*": odd days that are Fridays */
	NEXT("0 0 */2 * FRI", "2026-01-01T00:00:00Z", "2026-01-09T00:00:00Z");
	NEXT("0 0 */2 * FRI", "2026-01-09T00:00:00Z", "2026-01-23T00:00:00Z");
	/* the 13th that is a Sunday: "*" stepped by 7 is Sunday, starred */
	NEXT("0 0 13 * */7", "2026-01-01T00:00:00Z", "2026-09-13T00:00:00Z");
	/* the list "*,5" starts with "*" too */
	NEXT("0 0 13 * *,5", "2026-01-01T00:00:00Z", "2026-01-13T00:00:00Z");
}

static void test_next_macros(void)
{
	NEXT("@hourly", "2026-01-01T10:00:00Z", "2026-01-01T11:00:00Z");
	NEXT("@hourly", "2026-01-01T10:59:59Z", "2026-01-01T11:00:00Z");
	NEXT("@daily", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z");
	NEXT("@midnight", "2026-01-01T12:00:00Z", "2026-01-02T00:00:00Z");
	NEXT("@weekly", "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z");
	NEXT("@weekly", "2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z");
	NEXT("@monthly", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z");
	NEXT("@monthly", "2026-12-15T00:00:00Z", "2027-01-01T00:00:00Z");
	NEXT("@yearly", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z");
	NEXT("@annually", "2026-06-01T00:00:00Z", "2027-01-01T00:00:00Z");
	NEXT("@DAILY", "2026-02-28T23:00:00Z", "2026-03-01T00:00:00Z");
}

/* prev(): the mirror images, and "at" counts. */

static void test_prev(void)
{
	PREV("*/15 * * * *", "2026-01-01T00:15:00Z", "2026-01-01T00:15:00Z");
	PREV("*/15 * * * *", "2026-01-01T00:15:59Z", "2026-01-01T00:15:00Z");
	PREV("*/15 * * * *", "2026-01-01T00:14:59Z", "2026-01-01T00:00:00Z");
	PREV("*/15 * * * *", "2026-12-31T23:59:59Z", "2026-12-31T23:45:00Z");
	PREV("5-59/20 * * * *", "2026-01-01T00:04:59Z", "2025-12-31T23:45:00Z");
	PREV("0,30 8,12-13 * * *", "2026-03-11T07:59:00Z",
	     "2026-03-10T13:30:00Z");
	PREV("*/20,59 23 * * *", "2026-01-02T00:10:00Z",
	     "2026-01-01T23:59:00Z");
	PREV("20-40/20,59 22-23 * * *", "2026-01-01T23:10:00Z",
	     "2026-01-01T22:59:00Z");
	PREV("0 0 1 1 *", "2026-12-31T23:59:59Z", "2026-01-01T00:00:00Z");
	PREV("0 0 1 1 *", "2027-01-01T00:00:00Z", "2027-01-01T00:00:00Z");
	PREV("30 23 31 12 *", "2027-06-01T00:00:00Z", "2026-12-31T23:30:00Z");
	PREV("0 0 31 * *", "2026-05-30T23:59:00Z", "2026-03-31T00:00:00Z");
	PREV("0 0 31 * *", "2026-12-30T00:00:00Z", "2026-10-31T00:00:00Z");
	PREV("0 0 31 * *", "2026-03-30T00:00:00Z", "2026-01-31T00:00:00Z");
	PREV("0 0 29 2 *", "2104-02-28T23:59:00Z", "2096-02-29T00:00:00Z");
	PREV("0 0 29 2 *", "2028-02-29T00:00:30Z", "2028-02-29T00:00:00Z");
	PREV("0 0 29 2 *", "2028-02-28T23:59:59Z", "2024-02-29T00:00:00Z");
	PREV("0 0 * 2 *", "2101-01-31T00:00:00Z", "2100-02-28T00:00:00Z");
	PREV("0 9 * * MON-FRI", "2026-01-05T08:59:59Z", "2026-01-02T09:00:00Z");
	PREV("0 0 * * 7", "2026-01-10T23:59:00Z", "2026-01-04T00:00:00Z");
	PREV("0 0 13 * FRI", "2026-01-15T00:00:00Z", "2026-01-13T00:00:00Z");
	PREV("0 0 13 * FRI", "2026-01-12T23:59:00Z", "2026-01-09T00:00:00Z");
	PREV("0 0 */2 * FRI", "2026-01-22T00:00:00Z", "2026-01-09T00:00:00Z");
	PREV("@hourly", "2026-01-01T00:59:59Z", "2026-01-01T00:00:00Z");
	PREV("@daily", "2026-03-01T00:00:00Z", "2026-03-01T00:00:00Z");
	PREV("@midnight", "2026-03-01T23:59:59Z", "2026-03-01T00:00:00Z");
	PREV("@weekly", "2026-01-03T23:59:00Z", "2025-12-28T00:00:00Z");
	PREV("@monthly", "2026-03-01T00:00:00Z", "2026-03-01T00:00:00Z");
	PREV("@monthly", "2026-02-28T23:59:00Z", "2026-02-01T00:00:00Z");
	PREV("@yearly", "2026-12-31T23:59:59Z", "2026-01-01T00:00:00Z");
	PREV("@annually", "2025-12-31T23:59:59Z", "2025-01-01T00:00:00Z");
}

/* Around the epoch: time_t is signed, the minute is floored. */
static void test_negative_times(void)
{
	struct bfs_cron c;
	time_t t = 1;

	CHECK(parse_ok(__LINE__, &c, "0 0 * * *"));
	CHECK_EQ(bfs_cron_next(&c, -1, &t), 0);
	CHECK_EQ(t, 0);
	CHECK_EQ(bfs_cron_next(&c, -86401, &t), 0);
	CHECK_EQ(t, -86400);
	CHECK_EQ(bfs_cron_prev(&c, -1, &t), 0);
	CHECK_EQ(t, -86400);
	CHECK_EQ(bfs_cron_prev(&c, 0, &t), 0);
	CHECK_EQ(t, 0);
	CHECK(parse_ok(__LINE__, &c, "* * * * *"));
	CHECK_EQ(bfs_cron_prev(&c, -1, &t), 0);
	CHECK_EQ(t, -60);
	CHECK_EQ(bfs_cron_next(&c, -61, &t), 0);
	CHECK_EQ(t, -60);
	CHECK_EQ(bfs_cron_next(&c, -60, &t), 0);
	CHECK_EQ(t, 0);
	/* 1900 was not a leap year */
	PREV("0 0 29 2 *", "1970-01-01T00:00:00Z", "1968-02-29T00:00:00Z");
	CHECK(parse_ok(__LINE__, &c, "0 0 29 2 *"));
	CHECK_EQ(bfs_cron_prev(&c, -2145916800 /* 1902-01-01 */, &t), 0);
	CHECK_EQ(t, -2330121600 /* 1896-02-29 */);
}

/* Patterns that can never fire, and rare ones that do. */

static void test_never(void)
{
	static const char *const dead[] = {
		"0 0 30 2 *",	   "0 0 31 4 *",	 "0 0 31 2,4,6,9,11 *",
		"0 0 30,31 FEB *", "* * 31 SEP *",	 "0 0 30-31 2 */2",
		"0 0 31 4 *,1",	   "0 0 31 APR-JUN/2 *",
	};
	size_t i;

	for (i = 0; i < sizeof(dead) / sizeof(dead[0]); i++) {
		check_one(__LINE__, true, dead[i], ts("2026-01-01T00:00:00Z"),
			  NULL);
		check_one(__LINE__, false, dead[i], ts("2026-01-01T00:00:00Z"),
			  NULL);
		check_one(__LINE__, true, dead[i], 0, NULL);
	}
	/* April and June have no 31st, August has */
	NEXT("0 0 31 APR-AUG/2 *", "2026-01-01T00:00:00Z",
	     "2026-08-31T00:00:00Z");
}

static void test_rare(void)
{
	/* Feb 29 and Sunday: every 28 years, but 40 across 2100 */
	NEXT("0 0 29 2 */7", "2026-01-01T00:00:00Z", "2032-02-29T00:00:00Z");
	NEXT("0 0 29 2 */7", "2088-02-29T00:00:00Z", "2128-02-29T00:00:00Z");
	PREV("0 0 29 2 */7", "2127-12-31T00:00:00Z", "2088-02-29T00:00:00Z");
	/* Jan 1 and Monday: 12 years from 2091 */
	NEXT("0 0 */31 1 MON", "2026-01-01T00:00:00Z", "2029-01-01T00:00:00Z");
	NEXT("0 0 */31 1 MON", "2091-01-01T00:00:00Z", "2103-01-01T00:00:00Z");
	PREV("0 0 */31 1 MON", "2102-12-31T00:00:00Z", "2091-01-01T00:00:00Z");
	/* Feb 1 or Feb 29, and Monday */
	NEXT("0 0 */28 2 MON", "2026-01-01T00:00:00Z", "2027-02-01T00:00:00Z");
}

/* A struct that breaks the parser's invariants still ends its search. */
static void test_hand_made(void)
{
	struct bfs_cron c;
	time_t t = 0;

	memset(&c, 0, sizeof(c));
	CHECK_EQ(bfs_cron_next(&c, 0, &t), -EINVAL);
	CHECK_EQ(bfs_cron_prev(&c, 0, &t), -EINVAL);
	CHECK(parse_ok(__LINE__, &c, "0 0 * 2 *"));
	c.days = 1u << 29; /* the 30th, yet dom_star */
	CHECK_EQ(bfs_cron_next(&c, 0, &t), -ENOENT);
	CHECK_EQ(bfs_cron_prev(&c, 0, &t), -ENOENT);
	c.minutes |= 1ull << 60;
	CHECK_EQ(bfs_cron_next(&c, 0, &t), -EINVAL);
}

/* The ends of what gmtime_r can represent. */
static void test_overflow(void)
{
	struct bfs_cron c;
	time_t lo = 0, hi = INT64_MAX, mid, t = 0;
	struct tm tm;

	CHECK(parse_ok(__LINE__, &c, "* * * * *"));
	CHECK_EQ(bfs_cron_next(&c, INT64_MAX, &t), -EOVERFLOW);
	CHECK_EQ(bfs_cron_prev(&c, INT64_MAX, &t), -EOVERFLOW);
	CHECK_EQ(bfs_cron_prev(&c, INT64_MIN, &t), -EOVERFLOW);
	/* the last second gmtime_r can show */
	while (hi - lo > 1) {
		mid = lo + (hi - lo) / 2;
		if (gmtime_r(&mid, &tm))
			lo = mid;
		else
			hi = mid;
	}
	CHECK_EQ(bfs_cron_next(&c, lo, &t), -EOVERFLOW);
	CHECK_EQ(bfs_cron_prev(&c, lo, &t), 0);
	CHECK_EQ(t, lo - lo % 60);
	CHECK(parse_ok(__LINE__, &c, "0 0 1 FEB *"));
	CHECK_EQ(bfs_cron_next(&c, lo, &t), -EOVERFLOW);
}

/*
 * The cross-check: random valid patterns, built with their expected
 * bitsets, against a plain minute-by-minute scan.
 */

struct ref {
	uint64_t bits[5]; /* bit v: value v, as written (dow 7 kept) */
	bool dom_star, dow_star;
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

/* splitmix64: seeded, so every run checks the same cases */
static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static int rnd_in(int lo, int hi)
{
	return lo + (int)(rnd() % (uint64_t)(hi - lo + 1));
}

static const int gen_min[5] = {0, 0, 1, 1, 0};
static const int gen_max[5] = {59, 23, 31, 12, 7};
static const char *const gen_names[5][13] = {
	[3] = {"jan", "Feb", "MAR", "apr", "May", "JUN", "jul", "Aug", "SEP",
	       "oct", "Nov", "DEC"},
	[4] = {"sun", "Mon", "TUE", "wed", "Thu", "FRI", "sat"},
};

static char *gen_value(char *o, int f, int v)
{
	/* a name where there is one for v, half of the time */
	if (gen_names[f][0] && v - gen_min[f] < (f == 3 ? 12 : 7) && rnd() % 2)
		return o + sprintf(o, "%s", gen_names[f][v - gen_min[f]]);
	return o + sprintf(o, "%d", v);
}

static char *gen_item(char *o, int f, uint64_t *bits)
{
	int min = gen_min[f], max = gen_max[f];
	int lo = rnd_in(min, max), hi = rnd_in(lo, max), step = 1, v;

	switch (rnd() % 7) {
	case 0:
		o += sprintf(o, "*");
		lo = min;
		hi = max;
		break;
	case 1:
		step = rnd_in(1, max);
		o += sprintf(o, "*/%d", step);
		lo = min;
		hi = max;
		break;
	case 2:
	case 3:
		o = gen_value(o, f, lo);
		hi = lo;
		break;
	case 4:
		o = gen_value(o, f, lo);
		*o++ = '-';
		o = gen_value(o, f, hi);
		break;
	case 5:
		step = rnd_in(1, max);
		o = gen_value(o, f, lo);
		*o++ = '-';
		o = gen_value(o, f, hi);
		o += sprintf(o, "/%d", step);
		break;
	default:
		step = rnd_in(1, max);
		o = gen_value(o, f, lo);
		o += sprintf(o, "/%d", step);
		hi = max;
		break;
	}
	for (v = lo; v <= hi; v += step)
		*bits |= 1ull << v;
	return o;
}

static void gen_pattern(char *o, struct ref *r)
{
	int f, n, i;

	memset(r, 0, sizeof(*r));
	o += sprintf(o, "%s", rnd() % 4 ? "" : " \t");
	for (f = 0; f < 5; f++) {
		if (f)
			o += sprintf(o, "%s", rnd() % 4 ? " " : "\t  ");
		n = rnd() % 4 ? 1 : rnd_in(2, 3);
		for (i = 0; i < n; i++) {
			if (i)
				*o++ = ',';
			o = gen_item(o, f, &r->bits[f]);
		}
	}
	*o = 0;
}

/* The star flags follow the text: set them from it. */
static void gen_stars(const char *text, struct ref *r)
{
	const char *p = text;
	int f;

	for (f = 0; f < 5; f++) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (f == 2)
			r->dom_star = *p == '*';
		if (f == 4)
			r->dow_star = *p == '*';
		while (*p && *p != ' ' && *p != '\t')
			p++;
	}
}

static bool ref_day(const struct ref *r, const struct tm *tm)
{
	uint64_t dow = r->bits[4] | r->bits[4] >> 7;
	bool dom_ok = r->bits[2] >> tm->tm_mday & 1;
	bool dow_ok = dow >> tm->tm_wday & 1;

	if (!(r->bits[3] >> (tm->tm_mon + 1) & 1))
		return false;
	if (r->dom_star || r->dow_star)
		return dom_ok && dow_ok;
	return dom_ok || dow_ok;
}

static time_t floor_div(time_t a, time_t b)
{
	return a / b - (a % b < 0);
}

/*
 * Whether minute t (a multiple of 60) fires.  The date is decomposed
 * once per UTC day (a day is 86400 s: no leap seconds in time_t), the
 * rest is arithmetic, so the scan stays plain and fast.
 */
static bool ref_match(const struct ref *r, time_t t, time_t *day, bool *ok)
{
	time_t d = floor_div(t, 86400), s = t - d * 86400;
	struct tm tm;

	if (d != *day) {
		*day = d;
		d *= 86400;
		*ok = gmtime_r(&d, &tm) && ref_day(r, &tm);
	}
	return *ok && (r->bits[1] >> (s / 3600) & 1) &&
	       (r->bits[0] >> (s % 3600 / 60) & 1);
}

/* Scan minutes from..to, inclusive, by step (+-60): the first match. */
static bool ref_scan(const struct ref *r, time_t from, time_t to, time_t step,
		     time_t *hit)
{
	time_t day = INT64_MIN, t;
	bool ok = false;

	for (t = from; step > 0 ? t <= to : t >= to; t += step) {
		if (ref_match(r, t, &day, &ok)) {
			*hit = t;
			return true;
		}
	}
	return false;
}

#define WINDOW (45 * 86400) /* the plain scan's reach */

static int fuzz_bad, fuzz_queries, fuzz_in_window;

static void fuzz_fail(const char *text, const char *what, time_t from,
		      time_t got, int ret)
{
	char a[64], b[64];

	if (fuzz_bad++ < 10)
		fprintf(stderr, "fuzz \"%s\": %s from %s: %s (ret %d)\n", text,
			what, fmt(from, a), fmt(got, b), ret);
	check_failed_now = 1;
}

/*
 * next(from) against the scan: equal when the scan finds it; beyond the
 * window otherwise, and then a real fire time with nothing between (by a
 * scan over the matching days only).
 */
static void fuzz_next(const struct bfs_cron *c, const struct ref *r,
		      time_t from)
{
	time_t first = floor_div(from, 60) * 60 + 60, hit = 0, t = 0;
	time_t day = INT64_MIN;
	bool ok = false, found;
	int ret = bfs_cron_next(c, from, &t);

	found = ref_scan(r, first, first + WINDOW, 60, &hit);
	fuzz_queries++;
	fuzz_in_window += found;
	if (found && (ret || t != hit))
		return fuzz_fail(c->text, "next", from, t, ret);
	if (found)
		return;
	if (ret == -ENOENT)
		return; /* test_never pins the dead ones */
	if (ret || t <= first + WINDOW || !ref_match(r, t, &day, &ok))
		return fuzz_fail(c->text, "next (beyond)", from, t, ret);
	/* nothing fires between the window and t: scan matching days */
	for (day = floor_div(first + WINDOW, 86400); day * 86400 < t; day++) {
		time_t d = day * 86400, e = d + 86340; /* last minute */
		struct tm tm;

		if (!gmtime_r(&d, &tm) || !ref_day(r, &tm))
			continue;
		if (ref_scan(r, d < first ? first : d, e < t ? e : t - 60, 60,
			     &hit))
			return fuzz_fail(c->text, "next (skipped)", from, hit,
					 ret);
	}
}

static void fuzz_prev(const struct bfs_cron *c, const struct ref *r,
		      time_t from)
{
	time_t last = floor_div(from, 60) * 60, hit = 0, t = 0;
	time_t day = INT64_MIN;
	bool ok = false, found;
	int ret = bfs_cron_prev(c, from, &t);

	found = ref_scan(r, last, last - WINDOW, -60, &hit);
	fuzz_queries++;
	fuzz_in_window += found;
	if (found && (ret || t != hit))
		return fuzz_fail(c->text, "prev", from, t, ret);
	if (found || ret == -ENOENT)
		return;
	if (ret || t >= last - WINDOW || !ref_match(r, t, &day, &ok))
		return fuzz_fail(c->text, "prev (beyond)", from, t, ret);
	for (day = floor_div(last - WINDOW, 86400); day * 86400 + 86399 > t;
	     day--) {
		time_t d = day * 86400, e = d + 86340; /* last minute */
		struct tm tm;

		if (!gmtime_r(&d, &tm) || !ref_day(r, &tm))
			continue;
		if (ref_scan(r, e > last ? last : e, d > t ? d : t + 60, -60,
			     &hit))
			return fuzz_fail(c->text, "prev (skipped)", from, hit,
					 ret);
	}
}

/* A start time from 1900 to 2200 (across 2100), sometimes on a minute. */
static time_t gen_time(void)
{
	time_t t = (time_t)(rnd() % 9467280000ull) - 2208988800;

	return rnd() % 4 ? t : floor_div(t, 60) * 60;
}

/* The parser agrees with the generator, and its text parses back. */
static void fuzz_parse(const struct bfs_cron *c, const struct ref *r)
{
	uint64_t dow = (r->bits[4] | r->bits[4] >> 7) & 0x7f;
	struct bfs_cron d;

	if (c->minutes != r->bits[0] || c->hours != r->bits[1] ||
	    c->days != r->bits[2] >> 1 || c->months != r->bits[3] >> 1 ||
	    c->weekdays != dow || c->dom_star != r->dom_star ||
	    c->dow_star != r->dow_star)
		fuzz_fail(c->text, "parse", 0, 0, 0);
	if (bfs_cron_parse(&d, c->text, NULL, 0) || memcmp(c, &d, sizeof(d)))
		fuzz_fail(c->text, "text round trip", 0, 0, 0);
}

static void test_fuzz(void)
{
	struct bfs_cron c;
	struct ref r;
	char text[256], err[256];
	time_t from, t;
	int i, j, fired = 0;

	for (i = 0; i < 400; i++) {
		gen_pattern(text, &r);
		gen_stars(text, &r);
		if (bfs_cron_parse(&c, text, err, sizeof(err))) {
			fprintf(stderr, "fuzz \"%s\": %s\n", text, err);
			check_failed_now = 1;
			continue;
		}
		fuzz_parse(&c, &r);
		for (j = 0; j < 3; j++) {
			from = gen_time();
			fuzz_next(&c, &r, from);
			fuzz_prev(&c, &r, from);
			/* from a fire time: prev finds it, next moves on */
			if (bfs_cron_next(&c, from, &t))
				continue;
			fired++;
			fuzz_prev(&c, &r, t);
			fuzz_next(&c, &r, t);
		}
	}
	fprintf(stderr, "fuzz: %d queries, %d within the plain scan's window\n",
		fuzz_queries, fuzz_in_window);
	/* the generator must not make only dead or rare patterns */
	CHECK(fired > 900);
	CHECK(fuzz_in_window > fuzz_queries / 3);
}

int main(void)
{
	RUN(test_parse_bits);
	RUN(test_parse_whitespace);
	RUN(test_parse_equivalents);
	RUN(test_text);
	RUN(test_reject_shape);
	RUN(test_reject_macros);
	RUN(test_reject_range);
	RUN(test_reject_step);
	RUN(test_reject_syntax);
	RUN(test_reject_odd_bytes);
	RUN(test_next_steps);
	RUN(test_next_lists);
	RUN(test_next_month_ends);
	RUN(test_next_leap);
	RUN(test_next_year_wrap);
	RUN(test_next_names);
	RUN(test_next_sunday_7);
	RUN(test_next_dom_dow);
	RUN(test_next_macros);
	RUN(test_prev);
	RUN(test_negative_times);
	RUN(test_never);
	RUN(test_rare);
	RUN(test_hand_made);
	RUN(test_overflow);
	RUN(test_fuzz);
	return check_summary();
}
