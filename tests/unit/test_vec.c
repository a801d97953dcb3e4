#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "vec.h"

Test(vec, grows_to_its_maximum_and_refuses_past_it)
{
	struct vec v = VEC_INIT(uint32_t, 40, "test numbers");

	for (uint32_t i = 0; i < 40; i++)
		cr_assert_eq(vec_append(&v, &i), 0, "append %u", i);
	cr_expect_eq(v.len, 40);
	cr_expect_eq(v.cap, 40, "capacity clamped to the maximum, not doubled past it");
	uint32_t x = 99;
	cr_expect_eq(vec_append(&v, &x), -ENOSPC);
	errno = 0;
	cr_expect_null(vec_push(&v));
	cr_expect_eq(errno, ENOSPC);
	cr_expect_eq(v.refused, 2, "each refusal is counted");
	cr_expect_eq(v.len, 40, "a refusal changes nothing");
	for (uint32_t i = 0; i < 40; i++)
		cr_expect_eq(*(uint32_t *)vec_at(&v, i), i);
	vec_free(&v);
	cr_expect_null(v.items);
	cr_expect_eq(v.len, 0);
	cr_expect_eq(vec_append(&v, &x), 0, "usable again after vec_free");
	vec_free(&v);
}

Test(vec, growth_rule)
{
	struct vec v;

	vec_init(&v, sizeof(int), 1000, "ints");
	cr_assert_not_null(vec_push(&v));
	cr_expect_eq(v.cap, VEC_GROW_FIRST);
	cr_assert_eq(vec_reserve(&v, 16), 0);
	cr_expect_eq(v.cap, 2 * VEC_GROW_FIRST);
	cr_expect_eq(vec_reserve(&v, 1000), -ENOSPC, "len 1 + 1000 is past 1000");
	cr_expect_eq(vec_reserve(&v, SIZE_MAX), -ENOSPC, "no overflow in len + more");
	cr_expect_eq(v.refused, 2);
	cr_expect_eq(vec_reserve(&v, 999), 0, "len 1 + 999 is the maximum");
	cr_expect_eq(v.cap, 1000);
	vec_free(&v);
}

Test(vec, push_zeroes_and_removes)
{
	struct vec v = VEC_INIT(int, 8, "ints");
	int *e;

	for (int i = 0; i < 5; i++) {
		cr_assert_not_null(e = vec_push(&v));
		cr_expect_eq(*e, 0);
		*e = i;
	}
	vec_swap_remove(&v, 1);			/* 0 4 2 3 */
	cr_expect_eq(*(int *)vec_at(&v, 1), 4);
	vec_remove(&v, 0);			/* 4 2 3 */
	cr_expect_eq(v.len, 3);
	cr_expect_eq(*(int *)vec_at(&v, 0), 4);
	cr_expect_eq(*(int *)vec_at(&v, 2), 3);
	vec_swap_remove(&v, 7);			/* out of range: nothing */
	cr_expect_eq(v.len, 3);
	vec_truncate(&v, 1);
	cr_expect_eq(v.len, 1);
	size_t n;
	int *a = vec_detach(&v, &n);
	cr_expect_eq(n, 1);
	cr_expect_eq(a[0], 4);
	cr_expect_null(v.items);
	free(a);
}

Test(vec, pointers)
{
	static int a = 1, b = 2;
	struct vec v = VEC_INIT(int *, 4, "pointers");
	int *pa = &a, *pb = &b;

	cr_assert_eq(vec_append(&v, &pa), 0);
	cr_assert_eq(vec_append(&v, &pb), 0);
	cr_expect_eq(*VEC_PTR(&v, int *, 1), 2);
	vec_free(&v);
}
