/* bench_grid's kd-tree baseline: nanoflann's KDTreeSingleIndexAdaptor over the benchmark's
 * decoded points (kdtree.h). Built with nanoflann's defaults except a leaf of 10 points, the
 * size its documentation suggests for fast queries; radius searches unsorted (the caller
 * applies the library's distance rule and order to every baseline alike). */
#include "kdtree.h"

#include <nanoflann.hpp>

#include <cstdio>
#include <new>
#include <utility>
#include <vector>

namespace {

struct cloud {
  const float *pts;
  size_t n;
  size_t kdtree_get_point_count() const { return n; }
  float kdtree_get_pt(size_t i, size_t dim) const { return pts[i * 3 + dim]; }
  template <class Box> bool kdtree_get_bbox(Box &) const { return false; }
};

using index_t = nanoflann::KDTreeSingleIndexAdaptor<nanoflann::L2_Simple_Adaptor<float, cloud>,
                                                    cloud, 3, uint32_t>;

} // namespace

struct kdtree {
  cloud pts;
  index_t index;
  std::vector<std::pair<uint32_t, float>> found;
  std::vector<uint32_t> ids;
  kdtree(const float *p, size_t n)
      : pts{p, n}, index(3, pts, nanoflann::KDTreeSingleIndexAdaptorParams(10)) {
    index.buildIndex();
  }
};

extern "C" kdtree *kdtree_build(const float *pts, size_t n) {
  try {
    return new kdtree(pts, n);
  } catch (const std::bad_alloc &) {
    return nullptr;
  }
}

extern "C" void kdtree_free(kdtree *t) {
  delete t;
}

extern "C" size_t kdtree_radius(kdtree *t, const float c[3], float r2, const uint32_t **idx) {
  nanoflann::SearchParams params;
  params.sorted = false;
  size_t n = t->index.radiusSearch(c, r2, t->found, params);
  t->ids.resize(n);
  for (size_t i = 0; i < n; i++)
    t->ids[i] = t->found[i].first;
  *idx = t->ids.data();
  return n;
}

extern "C" size_t kdtree_nearest(kdtree *t, const float c[3], size_t k, uint32_t *idx, float *d2) {
  return t->index.knnSearch(c, k, idx, d2);
}

extern "C" const char *kdtree_version(void) {
  static char v[32];
  std::snprintf(v, sizeof v, "nanoflann %d.%d.%d", NANOFLANN_VERSION >> 8,
                NANOFLANN_VERSION >> 4 & 15, NANOFLANN_VERSION & 15);
  return v;
}
