/* The grid queries' results: the nearest-k heap, the sort into the order
 * every query returns, and ng_hits_free. */
#include "grid_query.h"
#include "introsort.h"

/* Keys by value, the order every query returns. */
NGI_DEFINE_INTROSORT(sort_keys, ng_hit, key_less)

#define RADIX_MIN 1024 /* fewer keys: introsort measured as fast or faster (8 passes' tables) */

/* LSD radix sort of the keys in a[0..n) by their bytes, tmp holding n more;
 * passes whose byte is the same in every key (the id's top byte, usually the
 * distance's exponent byte) are skipped. Keys often share a byte with their
 * predecessor (near distances), and a counter bumped twice in a row waits for
 * its own store; so the array is taken as four quarters, interleaved, each
 * with its own counters (quarter w's share of a bucket follows w-1's: stable). */
static void radix_keys(ng_hit *a, ng_hit *tmp, size_t n) {
  size_t q4 = n / 4;
  const size_t lo[4] = {0, q4, 2 * q4, 3 * q4};
  ng_hit *src = a, *dst = tmp;
  for (unsigned b = 0; b < 64; b += 8) {
    uint32_t cnt[4][256];
    memset(cnt, 0, sizeof cnt);
    for (size_t i = 0; i < q4; i++)
      for (unsigned w = 0; w < 4; w++)
        cnt[w][(key_of(&src[lo[w] + i]) >> b) & 255u]++;
    for (size_t i = 4 * q4; i < n; i++)
      cnt[3][(key_of(&src[i]) >> b) & 255u]++;
    size_t first = (key_of(&src[0]) >> b) & 255u;
    if ((size_t)cnt[0][first] + cnt[1][first] + cnt[2][first] + cnt[3][first] == n) continue;
    uint32_t sum = 0;
    for (unsigned v = 0; v < 256; v++)
      for (unsigned w = 0; w < 4; w++) {
        uint32_t t = cnt[w][v];
        cnt[w][v] = sum;
        sum += t;
      }
    for (size_t i = 0; i < q4; i++)
      for (unsigned w = 0; w < 4; w++) {
        const ng_hit *e = &src[lo[w] + i];
        dst[cnt[w][(key_of(e) >> b) & 255u]++] = *e;
      }
    for (size_t i = 4 * q4; i < n; i++)
      dst[cnt[3][(key_of(&src[i]) >> b) & 255u]++] = src[i];
    ng_hit *t = src;
    src = dst;
    dst = t;
  }
  if (src != a) memcpy(a, src, n * sizeof *a);
}

#define BUCKET_MIN 24  /* fewer keys: introsort (its insertion sort, at 16) is as fast */
#define BUCKET_MAX 512 /* more: introsort, then the radix sort (its scratch on the stack) */

/* Bucket sort of the keys in a[0..n) (BUCKET_MIN <= n <= BUCKET_MAX), its
 * scratch on the stack (about 5 KB: no allocation, so no failure): n buckets
 * by (d / dmax)^3, the share of the ball of radius dmax within distance d,
 * so that points spread evenly in space spread evenly over the buckets. A
 * key's bucket never decreases with its distance (each step rounds
 * monotonically), so an insertion sort then only reorders keys within a
 * bucket. About two passes and no mispredicted compares between buckets
 * (introsort spent 2 us of a ~100-hit sphere's 7.5). Returns false, a[]
 * permuted but not sorted, when a bucket holds so many keys (equal
 * distances: duplicates) that the insertion sort would pass 8 moves a key;
 * the caller then sorts in full. */
static bool bucket_keys(ng_hit *a, size_t n) {
  float dmax = 0.0f;
  for (size_t i = 0; i < n; i++) {
    float d = key_distance(&a[i]);
    dmax = d > dmax ? d : dmax;
  }
  if (!(dmax > 0.0f) || !(dmax < INFINITY)) return false;
  uint16_t start[BUCKET_MAX + 1];
  uint64_t tmp[BUCKET_MAX];
  memset(start, 0, (n + 1) * sizeof *start);
  double inv = 1.0 / (double)dmax, nb = (double)n;
  for (size_t i = 0; i < n; i++) {
    double t = (double)key_distance(&a[i]) * inv;
    double v = t * t * t * nb;
    uint32_t b = v < nb ? (uint32_t)v : (uint32_t)n - 1u;
    a[i].reserved = b; /* scratch until the hits are decoded */
    start[b + 1]++;
  }
  for (size_t b = 1; b <= n; b++)
    start[b] = (uint16_t)(start[b] + start[b - 1]);
  for (size_t i = 0; i < n; i++)
    tmp[start[a[i].reserved]++] = key_of(&a[i]);
  size_t moves = 0, budget = 8 * n;
  for (size_t i = 1; i < n && moves <= budget; i++) {
    uint64_t x = tmp[i];
    size_t k = i;
    for (; k > 0 && x < tmp[k - 1]; k--)
      tmp[k] = tmp[k - 1];
    tmp[k] = x;
    moves += i - k;
  }
  for (size_t i = 0; i < n; i++)
    a[i].id = tmp[i];
  return moves <= budget;
}

static ng_status hits_reserve(ng_runtime *rt, ng_hits *h, size_t n);

/* Sort the keys, keep the first `limit` (0 = all), decode them into hits.
 * Some tens to hundreds of keys are bucket sorted, thousands radix sorted
 * (both linear, few mispredicted compares), the latter with the caller's
 * buffer's second half as the scratch: it grows once to twice the largest
 * result and is reused, so a game loop's queries allocate nothing.
 * When it cannot grow, introsort does the same work in place, so the sort
 * never fails. */
void ngi_query_sort(ng_runtime *rt, ng_hits *h, size_t limit) {
  size_t n = h->count;
  bool sorted = n <= 1;
  if (n >= BUCKET_MIN && n <= BUCKET_MAX) {
    sorted = bucket_keys(h->items, n);
  } else if (n >= RADIX_MIN && n <= UINT32_MAX && hits_reserve(rt, h, 2 * n) == NG_OK) {
    radix_keys(h->items, h->items + n, n);
    sorted = true;
  }
  if (!sorted) sort_keys(h->items, n);
  if (limit && h->count > limit) h->count = limit;
  const ngi_token_table *t = &rt->tokens;
  for (size_t i = 0; i < h->count; i++) {
    float d = key_distance(&h->items[i]);
    uint32_t local = (uint32_t)key_of(&h->items[i]);
    h->items[i].id = ngi_token_id_of(t, local);
    h->items[i].distance = d;
    h->items[i].reserved = 0;
  }
  if (t->ids.epoch == 0) return; /* no slot reused: slot order is id order */
  /* Keys order equal distances by slot; a reused slot's id is larger than
   * its slot says, so runs of equal distances are put back in id order
   * (insertion sort: such runs are short). */
  for (size_t i = 1; i < h->count; i++) {
    ng_hit x = h->items[i];
    size_t k = i;
    for (; k > 0 && h->items[k - 1].distance == x.distance && h->items[k - 1].id > x.id; k--)
      h->items[k] = h->items[k - 1];
    h->items[k] = x;
  }
}

/* Make room for n hits. fails: NG_ENOMEM with the buffer as it was. */
static ng_status hits_reserve(ng_runtime *rt, ng_hits *h, size_t n) {
  if (n <= h->capacity) return NG_OK;
  size_t ncap = h->capacity ? h->capacity : 16;
  while (ncap < n) {
    if (ncap > SIZE_MAX / 2) return NG_ENOMEM;
    ncap *= 2;
  }
  ng_hit *p = ngi_realloc_array(rt, h->items, h->capacity, ncap, sizeof(ng_hit));
  if (!p) return NG_ENOMEM;
  h->items = p;
  h->capacity = ncap;
  return NG_OK;
}

ng_status ngi_query_grow(query *q, uint64_t key) {
  ng_hits *h = q->out;
  if (hits_reserve(q->rt, h, h->count + 1) != NG_OK) return NG_ENOMEM;
  return ngi_query_push_key(q, key);
}

void ng_hits_free(ng_runtime *rt, ng_hits *hits) {
  if (!rt || !hits) return;
  ngi_free(rt, hits->items, hits->capacity * sizeof(ng_hit));
  if (hits->xyz) ngi_free(rt, hits->xyz, hits->xyz_capacity * sizeof(double));
  memset(hits, 0, sizeof *hits);
}
