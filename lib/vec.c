/* vec: one bounded growable array (vec.h) */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "vec.h"

void vec_init(struct vec *v, size_t size, size_t max, const char *what)
{
	*v = (struct vec){ .size = size, .max = max, .what = what };
}

/* the first refusal of each vec is logged; all are counted */
static int refuse(struct vec *v, size_t more, int err)
{
	if (v->refused++ == 0)
		log_warn("vec", "%s: refused room for %zu more: %s held=%zu max=%zu",
			 v->what ? v->what : "array", more,
			 err == -ENOSPC ? "past its maximum" : "out of memory", v->len, v->max);
	return err;
}

int vec_reserve(struct vec *v, size_t more)
{
	size_t want, cap;
	void *grown;

	if (more > v->max || v->len > v->max - more)
		return refuse(v, more, -ENOSPC);
	want = v->len + more;
	if (want <= v->cap)
		return 0;
	cap = v->cap ? v->cap : VEC_GROW_FIRST;
	while (cap < want)
		cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
	if (cap > v->max)
		cap = v->max;
	if (v->size && cap > SIZE_MAX / v->size)
		return refuse(v, more, -ENOMEM);
	if (!(grown = realloc(v->items, cap * v->size)))
		return refuse(v, more, -ENOMEM);
	v->items = grown;
	v->cap = cap;
	return 0;
}

void *vec_push(struct vec *v)
{
	void *e;
	int rc;

	if ((rc = vec_reserve(v, 1)) < 0) {
		errno = -rc;
		return NULL;
	}
	e = vec_at(v, v->len++);
	memset(e, 0, v->size);
	return e;
}

int vec_append(struct vec *v, const void *elem)
{
	int rc;

	if ((rc = vec_reserve(v, 1)) < 0)
		return rc;
	memcpy(vec_at(v, v->len++), elem, v->size);
	return 0;
}

void vec_swap_remove(struct vec *v, size_t i)
{
	if (i >= v->len)
		return;
	if (i != --v->len)
		memcpy(vec_at(v, i), vec_at(v, v->len), v->size);
}

void vec_remove(struct vec *v, size_t i)
{
	if (i >= v->len)
		return;
	memmove(vec_at(v, i), vec_at(v, i + 1), (v->len - i - 1) * v->size);
	v->len--;
}

void vec_truncate(struct vec *v, size_t len)
{
	if (len < v->len)
		v->len = len;
}

void *vec_detach(struct vec *v, size_t *len)
{
	void *items = v->items;

	if (len)
		*len = v->len;
	v->items = NULL;
	v->len = v->cap = 0;
	return items;
}

void vec_free(struct vec *v)
{
	free(v->items);
	v->items = NULL;
	v->len = v->cap = 0;
}
