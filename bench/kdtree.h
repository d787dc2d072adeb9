/* nanoflann's kd-tree (Debian libnanoflann-dev, header-only C++) as a baseline for bench_grid:
 * a static tree over the same decoded points, queried for a sphere's candidates and for
 * nearest-k. C interface to bench/kdtree.cpp; the library itself stays C. */
#ifndef NG_BENCH_KDTREE_H
#define NG_BENCH_KDTREE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kdtree kdtree;

/* A tree over pts[0 .. 3n) (x, y, z per point; kept by reference, not copied). NULL without
 * memory. */
kdtree *kdtree_build(const float *pts, size_t n);
void kdtree_free(kdtree *t);
/* The points within squared distance r2 of c, unsorted: their indices in *idx (owned by the
 * tree, valid until the next call); returns how many. */
size_t kdtree_radius(kdtree *t, const float c[3], float r2, const uint32_t **idx);
/* The k points nearest c (fewer if the tree has fewer), nearest first: indices into idx[],
 * squared distances into d2[]; returns how many. */
size_t kdtree_nearest(kdtree *t, const float c[3], size_t k, uint32_t *idx, float *d2);
/* "nanoflann x.y.z". */
const char *kdtree_version(void);

#ifdef __cplusplus
}
#endif

#endif /* NG_BENCH_KDTREE_H */
