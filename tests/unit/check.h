/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A minimal unit-test harness: each test file is one executable with a
 * main() that calls RUN(test_fn) for each test.  A failed CHECK prints
 * the file, line and expression and marks the test failed; main returns
 * check_summary(), which prints "N passed, N failed".
 */
#ifndef BFS_CHECK_H
#define BFS_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failed_now;
static int check_passed_total, check_failed_total;

#define CHECK(expr)                                                        \
	do {                                                               \
		if (!(expr)) {                                             \
			fprintf(stderr, "%s:%d: check failed: %s\n",      \
				__FILE__, __LINE__, #expr);                \
			check_failed_now = 1;                              \
		}                                                          \
	} while (0)

#define CHECK_EQ(a, b)                                                     \
	do {                                                               \
		long long check_a_ = (long long)(a);                       \
		long long check_b_ = (long long)(b);                       \
		if (check_a_ != check_b_) {                                \
			fprintf(stderr,                                    \
				"%s:%d: check failed: %s == %s (%lld vs %lld)\n", \
				__FILE__, __LINE__, #a, #b, check_a_,      \
				check_b_);                                 \
			check_failed_now = 1;                              \
		}                                                          \
	} while (0)

#define RUN(fn)                                                            \
	do {                                                               \
		check_failed_now = 0;                                      \
		fn();                                                      \
		if (check_failed_now) {                                    \
			check_failed_total++;                              \
			fprintf(stderr, "FAIL %s\n", #fn);                 \
		} else {                                                   \
			check_passed_total++;                              \
			fprintf(stderr, "ok   %s\n", #fn);                 \
		}                                                          \
	} while (0)

static inline int check_summary(void)
{
	printf("%d passed, %d failed\n", check_passed_total,
	       check_failed_total);
	return check_failed_total ? 1 : 0;
}

#endif
