// SPDX-License-Identifier: Apache-2.0
#include "cron.h"

#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define CR_NFIELDS 5
/* user text quoted in a message is cut to this many bytes */
#define CR_QUOTE_MAX 40

struct cr_spec {
	const char *name;
	int min, max;
	const char *const *names; /* names[v - min] is value v, or NULL */
};

static const char *const cr_month_names[] = {
	"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL",
	"AUG", "SEP", "OCT", "NOV", "DEC", NULL,
};

static const char *const cr_day_names[] = {
	"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL,
};

static const struct cr_spec cr_specs[CR_NFIELDS] = {
	{"minute", 0, 59, NULL},
	{"hour", 0, 23, NULL},
	{"day-of-month", 1, 31, NULL},
	{"month", 1, 12, cr_month_names},
	/* 7 is Sunday again: folded onto 0 once parsed */
	{"day-of-week", 0, 7, cr_day_names},
};

static const struct {
	const char *name;
	const char *fields;
} cr_macros[] = {
	{"@hourly", "0 * * * *"},   {"@daily", "0 0 * * *"},
	{"@midnight", "0 0 * * *"}, {"@weekly", "0 0 * * 0"},
	{"@monthly", "0 0 1 * *"},  {"@yearly", "0 0 1 1 *"},
	{"@annually", "0 0 1 1 *"},
};

/* Parsing. */

/* One field being parsed, for error messages. */
struct cr_ctx {
	const struct cr_spec *spec;
	int field; /* 1-based */
	const char *s, *e;
	char *err;
	size_t errlen;
};

static bool cr_blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

static bool cr_space(char ch)
{
	return isspace((unsigned char)ch);
}

/* Copy user text for a message: bounded, one line, printable. */
static const char *cr_quote(const char *s, const char *e, char *out)
{
	size_t n = (size_t)(e - s), i;

	if (n > CR_QUOTE_MAX)
		n = CR_QUOTE_MAX;
	for (i = 0; i < n; i++)
		out[i] = isprint((unsigned char)s[i]) ? s[i] : '?';
	if ((size_t)(e - s) > n)
		memcpy(out + n, "...", 4);
	else
		out[n] = 0;
	return out;
}

static int cr_fail(const struct cr_ctx *x, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int cr_fail(const struct cr_ctx *x, const char *fmt, ...)
{
	char msg[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	bfs_errf(x->err, x->errlen, "field %d (%s): %s", x->field,
		 x->spec->name, msg);
	return -EINVAL;
}

static int cr_junk(const struct cr_ctx *x, const char *p)
{
	char q[CR_QUOTE_MAX + 4];

	cr_quote(x->s, x->e, q);
	if (isprint((unsigned char)*p))
		return cr_fail(x, "unexpected \"%c\" in \"%s\"", *p, q);
	return cr_fail(x, "unexpected byte 0x%02x in \"%s\"", (unsigned char)*p,
		       q);
}

/* A run of digits at *p; saturates, as anything that large is out of
 * range anyway. */
static int cr_digits(const char **p, const char *end)
{
	int v = 0;

	for (; *p < end && isdigit((unsigned char)**p); (*p)++)
		v = v > 100000 ? v : v * 10 + (**p - '0');
	return v;
}

static int cr_name(const struct cr_ctx *x, const char **p, const char *end,
		   int *v)
{
	const char *s = *p;
	char q[CR_QUOTE_MAX + 4];
	int i;

	while (*p < end && isalpha((unsigned char)**p))
		(*p)++;
	for (i = 0; *p - s == 3 && x->spec->names[i]; i++) {
		if (!strncasecmp(s, x->spec->names[i], 3)) {
			*v = x->spec->min + i;
			return 0;
		}
	}
	return cr_fail(x, "unknown name \"%s\"", cr_quote(s, *p, q));
}

/* A number or (where the field has them) a name, range-checked. */
static int cr_value(const struct cr_ctx *x, const char **p, const char *end,
		    int *v)
{
	const char *s = *p;
	char q[CR_QUOTE_MAX + 4];

	if (s == end)
		return cr_fail(x, "missing %s in \"%s\"",
			       x->spec->names ? "number or name" : "number",
			       cr_quote(x->s, x->e, q));
	if (x->spec->names && isalpha((unsigned char)*s))
		return cr_name(x, p, end, v);
	if (!isdigit((unsigned char)*s))
		return cr_junk(x, s);
	*v = cr_digits(p, end);
	if (*v < x->spec->min || *v > x->spec->max)
		return cr_fail(x, "%s is out of range %d-%d",
			       cr_quote(s, *p, q), x->spec->min, x->spec->max);
	return 0;
}

/* The n of "/n": like cronie, 1 up to the field's maximum. */
static int cr_step(const struct cr_ctx *x, const char **p, const char *end,
		   int *step)
{
	const char *s = *p;
	char q[CR_QUOTE_MAX + 4];

	if (s == end)
		return cr_fail(x, "missing step in \"%s\"",
			       cr_quote(x->s, x->e, q));
	if (!isdigit((unsigned char)*s))
		return cr_junk(x, s);
	*step = cr_digits(p, end);
	if (*step < 1 || *step > x->spec->max)
		return cr_fail(x, "step %s is out of range 1-%d",
			       cr_quote(s, *p, q), x->spec->max);
	return 0;
}

/* "lo[-hi]" at *p, or "*": the first value and the last. */
static int cr_range(const struct cr_ctx *x, const char **p, const char *end,
		    int *lo, int *hi)
{
	const char *s = *p;
	char q[CR_QUOTE_MAX + 4];
	int ret;

	if (s < end && *s == '*') {
		(*p)++;
		*lo = x->spec->min;
		*hi = x->spec->max;
		return 0;
	}
	ret = cr_value(x, p, end, lo);
	*hi = -1; /* a single value */
	if (ret || *p == end || **p != '-')
		return ret;
	(*p)++;
	ret = cr_value(x, p, end, hi);
	if (!ret && *hi < *lo)
		return cr_fail(x, "range %s is reversed", cr_quote(s, *p, q));
	return ret;
}

static int cr_item(const struct cr_ctx *x, const char *p, const char *end,
		   uint64_t *bits)
{
	char q[CR_QUOTE_MAX + 4];
	int lo, hi, step = 1, v, ret;

	if (p == end)
		return cr_fail(x, "empty list item in \"%s\"",
			       cr_quote(x->s, x->e, q));
	ret = cr_range(x, &p, end, &lo, &hi);
	if (ret)
		return ret;
	if (p < end && *p == '/') {
		p++;
		ret = cr_step(x, &p, end, &step);
		if (ret)
			return ret;
		if (hi < 0) /* "a/n" runs to the maximum */
			hi = x->spec->max;
	}
	if (p < end)
		return cr_junk(x, p);
	if (hi < 0)
		hi = lo;
	for (v = lo; v <= hi; v += step)
		*bits |= 1ull << v;
	return 0;
}

/* A comma list: bit v set for each value v. */
static int cr_field(const struct cr_ctx *x, uint64_t *bits)
{
	const char *p = x->s, *comma;
	int ret;

	*bits = 0;
	for (;;) {
		comma = memchr(p, ',', (size_t)(x->e - p));
		ret = cr_item(x, p, comma ? comma : x->e, bits);
		if (ret || !comma)
			return ret;
		p = comma + 1;
	}
}

static void cr_store_bits(struct bfs_cron *c, int field, uint64_t bits)
{
	switch (field) {
	case 0:
		c->minutes = bits;
		break;
	case 1:
		c->hours = (uint32_t)bits;
		break;
	case 2:
		c->days = (uint32_t)(bits >> 1);
		break;
	case 3:
		c->months = (uint16_t)(bits >> 1);
		break;
	default:
		c->weekdays = (uint8_t)((bits | bits >> 7) & 0x7f);
		break;
	}
}

/* Split [s, e) at blanks: the number of fields, the first 5 kept. */
static int cr_split(const char *s, const char *e, const char *fs[CR_NFIELDS],
		    const char *fe[CR_NFIELDS])
{
	int n = 0;

	for (;;) {
		while (s < e && cr_blank(*s))
			s++;
		if (s == e)
			return n;
		if (n < CR_NFIELDS)
			fs[n] = s;
		while (s < e && !cr_blank(*s))
			s++;
		if (n < CR_NFIELDS)
			fe[n] = s;
		n++;
	}
}

/* The canonical text: fields joined by one space, upper case. */
static void cr_set_text(struct bfs_cron *c, const char *const fs[],
			const char *const fe[])
{
	char *o = c->text;
	const char *p;
	int i;

	for (i = 0; i < CR_NFIELDS; i++) {
		if (i)
			*o++ = ' ';
		for (p = fs[i]; p < fe[i]; p++)
			*o++ = (char)toupper((unsigned char)*p);
	}
	*o = 0;
}

/* [s, e) is trimmed and shorter than BFS_CRON_TEXT_MAX. */
static int cr_parse_fields(struct bfs_cron *c, const char *s, const char *e,
			   char *err, size_t errlen)
{
	const char *fs[CR_NFIELDS], *fe[CR_NFIELDS];
	struct cr_ctx x = {.err = err, .errlen = errlen};
	uint64_t bits;
	int n, i, ret;

	n = cr_split(s, e, fs, fe);
	if (n != CR_NFIELDS) {
		bfs_errf(err, errlen,
			 "expected 5 fields (minute hour day-of-month month "
			 "day-of-week), got %d",
			 n);
		return -EINVAL;
	}
	for (i = 0; i < CR_NFIELDS; i++) {
		x.spec = &cr_specs[i];
		x.field = i + 1;
		x.s = fs[i];
		x.e = fe[i];
		ret = cr_field(&x, &bits);
		if (ret)
			return ret;
		cr_store_bits(c, i, bits);
	}
	/* Vixie cron's test: the text, not the values, decides */
	c->dom_star = *fs[2] == '*';
	c->dow_star = *fs[4] == '*';
	cr_set_text(c, fs, fe);
	return 0;
}

static int cr_parse_macro(struct bfs_cron *c, const char *s, const char *e,
			  char *err, size_t errlen)
{
	const char *w = s;
	char q[CR_QUOTE_MAX + 4];
	size_t i, n;
	int ret;

	while (w < e && !cr_blank(*w))
		w++;
	if (w < e) {
		bfs_errf(err, errlen, "unexpected text after \"%s\"",
			 cr_quote(s, w, q));
		return -EINVAL;
	}
	n = (size_t)(e - s);
	for (i = 0; i < sizeof(cr_macros) / sizeof(cr_macros[0]); i++) {
		if (strlen(cr_macros[i].name) != n ||
		    strncasecmp(s, cr_macros[i].name, n))
			continue;
		ret = cr_parse_fields(c, cr_macros[i].fields,
				      strchr(cr_macros[i].fields, 0), err,
				      errlen);
		/* keep the alias the user chose */
		snprintf(c->text, sizeof(c->text), "%s", cr_macros[i].name);
		return ret;
	}
	bfs_errf(err, errlen,
		 "unknown macro \"%s\" (expected @hourly, @daily, @midnight, "
		 "@weekly, @monthly, @yearly or @annually)",
		 cr_quote(s, e, q));
	return -EINVAL;
}

int bfs_cron_parse(struct bfs_cron *c, const char *text, char *err,
		   size_t errlen)
{
	const char *s = text ? text : "", *e;

	memset(c, 0, sizeof(*c));
	while (cr_space(*s))
		s++;
	e = s + strlen(s);
	while (e > s && cr_space(e[-1]))
		e--;
	if (s == e) {
		bfs_errf(err, errlen, "empty pattern");
		return -EINVAL;
	}
	if (e - s >= BFS_CRON_TEXT_MAX) {
		bfs_errf(err, errlen, "pattern is longer than %d characters",
			 BFS_CRON_TEXT_MAX - 1);
		return -EINVAL;
	}
	if (*s == '@')
		return cr_parse_macro(c, s, e, err, errlen);
	return cr_parse_fields(c, s, e, err, errlen);
}

const char *bfs_cron_text(const struct bfs_cron *c)
{
	return c->text;
}

/* Searching. */

/* A UTC calendar minute, stepped by hand: cheaper than timegm per day. */
struct cr_date {
	int64_t year;
	int mon;  /* 0-11 */
	int mday; /* 1-31 */
	int wday; /* 0-6, Sunday 0 */
	int hour;
	int min;
};

static int cr_mdays(int64_t year, int mon)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30,
				     31, 31, 30, 31, 30, 31};
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return days[mon] + (mon == 1 && leap);
}

static int cr_load(time_t t, struct cr_date *d)
{
	struct tm tm;

	if (!gmtime_r(&t, &tm))
		return -EOVERFLOW;
	d->year = (int64_t)tm.tm_year + 1900;
	d->mon = tm.tm_mon;
	d->mday = tm.tm_mday;
	d->wday = tm.tm_wday;
	d->hour = tm.tm_hour;
	d->min = tm.tm_min;
	return 0;
}

static int cr_store(const struct cr_date *d, time_t *t)
{
	struct tm tm;

	if (d->year - 1900 > INT_MAX || d->year - 1900 < INT_MIN)
		return -EOVERFLOW;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = (int)(d->year - 1900);
	tm.tm_mon = d->mon;
	tm.tm_mday = d->mday;
	tm.tm_hour = d->hour;
	tm.tm_min = d->min;
	*t = timegm(&tm);
	/* second 0 is never -1: that is timegm's overflow */
	return *t == (time_t)-1 ? -EOVERFLOW : 0;
}

static void cr_next_day(struct cr_date *d)
{
	d->wday = (d->wday + 1) % 7;
	if (++d->mday > cr_mdays(d->year, d->mon)) {
		d->mday = 1;
		if (++d->mon == 12) {
			d->mon = 0;
			d->year++;
		}
	}
	d->hour = 0;
	d->min = 0;
}

static void cr_next_month(struct cr_date *d)
{
	int last = cr_mdays(d->year, d->mon);

	d->wday = (d->wday + last - d->mday) % 7;
	d->mday = last;
	cr_next_day(d);
}

static void cr_prev_day(struct cr_date *d)
{
	d->wday = (d->wday + 6) % 7;
	if (--d->mday == 0) {
		if (d->mon-- == 0) {
			d->mon = 11;
			d->year--;
		}
		d->mday = cr_mdays(d->year, d->mon);
	}
	d->hour = 23;
	d->min = 59;
}

static void cr_prev_month(struct cr_date *d)
{
	d->wday = (d->wday + 7 - (d->mday - 1) % 7) % 7;
	d->mday = 1;
	cr_prev_day(d);
}

/* Lowest set bit at or above i, or -1. */
static int cr_bit_up(uint64_t bits, int i)
{
	if (i > 63)
		return -1;
	bits &= ~0ull << i;
	return bits ? __builtin_ctzll(bits) : -1;
}

/* Highest set bit at or below i, or -1. */
static int cr_bit_down(uint64_t bits, int i)
{
	if (i < 0)
		return -1;
	if (i < 63)
		bits &= (2ull << i) - 1;
	return bits ? 63 - __builtin_clzll(bits) : -1;
}

static bool cr_month_ok(const struct bfs_cron *c, const struct cr_date *d)
{
	return c->months >> d->mon & 1;
}

static bool cr_day_ok(const struct bfs_cron *c, const struct cr_date *d)
{
	bool dom = c->days >> (d->mday - 1) & 1;
	bool dow = c->weekdays >> d->wday & 1;

	if (c->dom_star || c->dow_star)
		return dom && dow;
	return dom || dow;
}

/* Move d to the first matching time of its day at or after it. */
static bool cr_time_up(const struct bfs_cron *c, struct cr_date *d)
{
	int h = cr_bit_up(c->hours, d->hour), m = 0;

	if (h == d->hour)
		m = cr_bit_up(c->minutes, d->min);
	if (h == d->hour && m < 0)
		h = cr_bit_up(c->hours, d->hour + 1);
	if (h < 0)
		return false;
	if (h != d->hour)
		m = cr_bit_up(c->minutes, 0);
	d->hour = h;
	d->min = m;
	return true;
}

/* Move d to the last matching time of its day at or before it. */
static bool cr_time_down(const struct bfs_cron *c, struct cr_date *d)
{
	int h = cr_bit_down(c->hours, d->hour), m = 0;

	if (h == d->hour)
		m = cr_bit_down(c->minutes, d->min);
	if (h == d->hour && m < 0)
		h = cr_bit_down(c->hours, d->hour - 1);
	if (h < 0)
		return false;
	if (h != d->hour)
		m = cr_bit_down(c->minutes, 59);
	d->hour = h;
	d->min = m;
	return true;
}

/* Every field has a value in range: what bfs_cron_parse guarantees. */
static bool cr_valid(const struct bfs_cron *c)
{
	return c->minutes && !(c->minutes >> 60) && c->hours &&
	       !(c->hours >> 24) && c->days && !(c->days >> 31) && c->months &&
	       !(c->months >> 12) && c->weekdays && !(c->weekdays >> 7);
}

/*
 * Whether some day ever matches, so a dead pattern costs nothing.  A day
 * of week restricted with the day of month (OR) matches in every month.
 * Otherwise both must match; a field starting with "*" holds its minimum
 * (the 1st, Sunday), and any date that exists falls on every weekday
 * within 400 years, Feb 29 included.  So the only dead patterns are days
 * of month that no chosen month has.  A hand-made struct breaking those
 * invariants still ends: the search is bounded.
 */
static bool cr_can_fire(const struct bfs_cron *c)
{
	static const int most[12] = {31, 29, 31, 30, 31, 30,
				     31, 31, 30, 31, 30, 31};
	int m;

	if (c->dom_star || !c->dow_star)
		return true;
	for (m = 0; m < 12; m++)
		if ((c->months >> m & 1) && (c->days & ((1ull << most[m]) - 1)))
			return true;
	return false;
}

static int cr_search_up(const struct bfs_cron *c, struct cr_date *d,
			time_t *out)
{
	int64_t last = d->year + BFS_CRON_SEARCH_YEARS;

	while (d->year <= last) {
		if (!cr_month_ok(c, d))
			cr_next_month(d);
		else if (cr_day_ok(c, d) && cr_time_up(c, d))
			return cr_store(d, out);
		else
			cr_next_day(d);
	}
	return -ENOENT;
}

static int cr_search_down(const struct bfs_cron *c, struct cr_date *d,
			  time_t *out)
{
	int64_t first = d->year - BFS_CRON_SEARCH_YEARS;

	while (d->year >= first) {
		if (!cr_month_ok(c, d))
			cr_prev_month(d);
		else if (cr_day_ok(c, d) && cr_time_down(c, d))
			return cr_store(d, out);
		else
			cr_prev_day(d);
	}
	return -ENOENT;
}

int bfs_cron_next(const struct bfs_cron *c, time_t after, time_t *next)
{
	struct cr_date d;
	int ret;

	if (!cr_valid(c))
		return -EINVAL;
	if (!cr_can_fire(c))
		return -ENOENT;
	ret = cr_load(after, &d);
	if (ret)
		return ret;
	/* strictly after: from the next whole minute */
	if (++d.min == 60) {
		d.min = 0;
		if (++d.hour == 24)
			cr_next_day(&d);
	}
	return cr_search_up(c, &d, next);
}

int bfs_cron_prev(const struct bfs_cron *c, time_t at_or_before, time_t *prev)
{
	struct cr_date d;
	int ret;

	if (!cr_valid(c))
		return -EINVAL;
	if (!cr_can_fire(c))
		return -ENOENT;
	/* at or before: the minute holding it is a candidate */
	ret = cr_load(at_or_before, &d);
	if (ret)
		return ret;
	return cr_search_down(c, &d, prev);
}
