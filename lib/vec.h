/* vec: the one growable array of natmesh (STYLE.md 15). Each vec is given
 * the most elements it may ever hold when it is made; it grows by one rule
 * (16 elements, then doubling, never past its maximum). Reaching the maximum
 * is an error the caller sees (-ENOSPC), counted in `refused`, and logged
 * once per vec with its name and maximum, so nothing is dropped silently.
 * Elements move when the vec grows: keep indices, not pointers, across a
 * push. */
#ifndef NATMESH_VEC_H
#define NATMESH_VEC_H

#include <stddef.h>
#include <stdint.h>

struct vec {
	void *items;
	size_t len, cap;	/* elements in use, allocated */
	size_t size;		/* bytes per element */
	size_t max;		/* most elements it may hold */
	const char *what;	/* names it in the log: "meshd peers" */
	uint64_t refused;	/* growths refused, at the maximum or for memory */
};

#define VEC_GROW_FIRST 16

/* A static initializer: struct vec v = VEC_INIT(struct x *, 4096, "x list"); */
#define VEC_INIT(type, maxn, name) { .size = sizeof(type), .max = (maxn), .what = (name) }
void vec_init(struct vec *v, size_t size, size_t max, const char *what);

/* room for `more` elements past len: 0, -ENOSPC (past the maximum) or -ENOMEM */
int vec_reserve(struct vec *v, size_t more);
/* a new zeroed element at the end; NULL with errno ENOSPC or ENOMEM */
void *vec_push(struct vec *v);
/* a copy of *elem at the end: 0, -ENOSPC or -ENOMEM */
int vec_append(struct vec *v, const void *elem);

static inline void *vec_at(const struct vec *v, size_t i)
{
	return (char *)v->items + i * v->size;
}
/* the i-th element when it holds pointers */
#define VEC_PTR(v, type, i) (((type *)(v)->items)[i])

/* removes element i, moving the last one into its place */
void vec_swap_remove(struct vec *v, size_t i);
/* removes element i, keeping the order of the rest */
void vec_remove(struct vec *v, size_t i);
/* forgets elements from len on (keeps the memory) */
void vec_truncate(struct vec *v, size_t len);
/* hands the array to the caller (free() it) and leaves v empty */
void *vec_detach(struct vec *v, size_t *len);
/* frees the array; v stays usable, empty, with its size and maximum */
void vec_free(struct vec *v);

#endif
