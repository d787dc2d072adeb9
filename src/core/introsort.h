/* One introsort for the core's hot sorts, instantiated per element type with the comparison
 * inlined. */
#ifndef NG_CORE_INTROSORT_H
#define NG_CORE_INTROSORT_H

#include <stddef.h>

/*
 * NGI_DEFINE_INTROSORT(NAME, T, LESS) defines two static functions:
 *   void NAME##_sift(T *a, size_t n, size_t i): sift a[i] down a max-heap of n;
 *   void NAME(T *a, size_t n): sort a ascending by LESS(const T *, const T *),
 *     a strict weak order.
 * Quicksort with a median-of-three pivot, insertion sort for runs of 16 or
 * fewer, heapsort once the recursion passes 64 levels, so never quadratic.
 * Why not qsort: its comparison is an indirect call per step, and these sorts
 * (cells of the spatial index, query results) are on the hot path.
 */
#define NGI_DEFINE_INTROSORT(NAME, T, LESS)                                                        \
  static void NAME##_sift(T *a, size_t n, size_t i) {                                              \
    for (;;) {                                                                                     \
      size_t l = 2 * i + 1, r = l + 1, m = i;                                                      \
      if (l < n && LESS(&a[m], &a[l])) m = l;                                                      \
      if (r < n && LESS(&a[m], &a[r])) m = r;                                                      \
      if (m == i) return;                                                                          \
      T t_ = a[m];                                                                                 \
      a[m] = a[i];                                                                                 \
      a[i] = t_;                                                                                   \
      i = m;                                                                                       \
    }                                                                                              \
  }                                                                                                \
  static void NAME##_rec(T *a, size_t n, unsigned depth) {                                         \
    T t_;                                                                                          \
    while (n > 16) {                                                                               \
      if (depth-- == 0) {                                                                          \
        for (size_t i = n / 2; i-- > 0;)                                                           \
          NAME##_sift(a, n, i);                                                                    \
        for (size_t e = n; e-- > 1;) {                                                             \
          t_ = a[0], a[0] = a[e], a[e] = t_;                                                       \
          NAME##_sift(a, e, 0);                                                                    \
        }                                                                                          \
        return;                                                                                    \
      }                                                                                            \
      size_t mid = n / 2;                                                                          \
      if (LESS(&a[mid], &a[0])) t_ = a[mid], a[mid] = a[0], a[0] = t_;                             \
      if (LESS(&a[n - 1], &a[mid])) {                                                              \
        t_ = a[n - 1], a[n - 1] = a[mid], a[mid] = t_;                                             \
        if (LESS(&a[mid], &a[0])) t_ = a[mid], a[mid] = a[0], a[0] = t_;                           \
      }                                                                                            \
      T p_ = a[mid];                                                                               \
      size_t i = 0, j = n - 1;                                                                     \
      for (;;) {                                                                                   \
        do                                                                                         \
          i++;                                                                                     \
        while (LESS(&a[i], &p_));                                                                  \
        do                                                                                         \
          j--;                                                                                     \
        while (LESS(&p_, &a[j]));                                                                  \
        if (i >= j) break;                                                                         \
        t_ = a[i], a[i] = a[j], a[j] = t_;                                                         \
      }                                                                                            \
      /* a[0..j] <= pivot <= a[j+1..n): recurse into the smaller part, loop on the other. */       \
      if (j + 1 < n - j - 1) {                                                                     \
        NAME##_rec(a, j + 1, depth);                                                               \
        a += j + 1;                                                                                \
        n -= j + 1;                                                                                \
      } else {                                                                                     \
        NAME##_rec(a + j + 1, n - j - 1, depth);                                                   \
        n = j + 1;                                                                                 \
      }                                                                                            \
    }                                                                                              \
    for (size_t i = 1; i < n; i++) {                                                               \
      T x_ = a[i];                                                                                 \
      size_t k = i;                                                                                \
      for (; k > 0 && LESS(&x_, &a[k - 1]); k--)                                                   \
        a[k] = a[k - 1];                                                                           \
      a[k] = x_;                                                                                   \
    }                                                                                              \
  }                                                                                                \
  static void NAME(T *a, size_t n) {                                                               \
    NAME##_rec(a, n, 64);                                                                          \
  }

#endif /* NG_CORE_INTROSORT_H */
