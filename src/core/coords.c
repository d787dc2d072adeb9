/* Coordinates in a runtime's units: the encoding rule every store call applies (a value that
 * does not fit its space is refused, naming it) and ng_coords_encode / ng_coords_decode. The
 * codec itself (ngi_unit_*) is in records.c. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Encode xyz (space's units in rt) into raw, the rule of every store call:
 * a value that does not fit is NG_EINVAL, recorded for `fn` naming the axis,
 * the space and the value, with raw untouched. Caller holds a lock (reads
 * the units). */
ng_status ngi_encode_xyz(ng_runtime *rt, const char *fn, int space, const double xyz[3],
                         int16_t raw[3]) {
  static const char axes[] = "xyz";
  int16_t out[3];
  for (int a = 0; a < 3; a++) {
    /* one encode: NGI_ENC_OK is ngi_coord_check's NG_OK (a NaN or an
     * infinity never encodes OK), which is asked only for its message */
    int32_t r;
    if (ngi_unit_encode(&rt->units[space], xyz[a], -32768, 32767, &r) != NGI_ENC_OK) {
      char why[160];
      (void)ngi_coord_check(&rt->units[space], space, xyz[a], why, sizeof why);
      return ngi_fail(rt, NG_EINVAL, "%s: %c%s", fn, axes[a], why + strlen("coordinate"));
    }
    out[a] = (int16_t)r;
  }
  memcpy(raw, out, sizeof out);
  return NG_OK;
}

ng_status ngi_check_space(ng_runtime *rt, const char *fn, int space) {
  if (space < 0 || space >= NG_SPACES)
    return ngi_fail(rt, NG_EINVAL, "%s: space must be 0..7, got %d", fn, space);
  return NG_OK;
}

/* needs: rt; xyz and raw 3n entries (NULL only when n == 0). guarantees:
 * every point encoded, or NG_EINVAL naming the first that does not fit (its
 * index when n > 1) with raw untouched. */
ng_status ng_coords_encode(ng_runtime *rt, int space, const double *xyz, size_t n, int16_t *raw) {
  static const char fn[] = "ng_coords_encode";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (n && !xyz) return ngi_fail(rt, NG_EINVAL, "%s: xyz must not be NULL (n is %zu)", fn, n);
  if (n && !raw) return ngi_fail(rt, NG_EINVAL, "%s: raw must not be NULL (n is %zu)", fn, n);
  ng_status st = ngi_check_space(rt, fn, space);
  if (st != NG_OK) return st;
  const ngi_unit *u = &rt->units[space];
  ngi_read_lock(rt);
  for (size_t i = 0; i < 3 * n && st == NG_OK; i++) { /* check everything first */
    int32_t r;
    if (ngi_unit_encode(u, xyz[i], -32768, 32767, &r) != NGI_ENC_OK || !isfinite(xyz[i])) {
      char where[48];
      if (n > 1)
        snprintf(where, sizeof where, "%s: point %zu", fn, i / 3 + 1);
      else
        snprintf(where, sizeof where, "%s", fn);
      int16_t sink[3];
      st = ngi_encode_xyz(rt, where, space, &xyz[i - i % 3], sink);
    }
  }
  for (size_t i = 0; i < 3 * n && st == NG_OK; i++) {
    int32_t r;
    (void)ngi_unit_encode(u, xyz[i], -32768, 32767, &r);
    raw[i] = (int16_t)r;
  }
  ngi_read_unlock(rt);
  return st;
}

ng_status ng_coords_decode(ng_runtime *rt, int space, const int16_t *raw, size_t n, double *xyz) {
  static const char fn[] = "ng_coords_decode";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (n && !raw) return ngi_fail(rt, NG_EINVAL, "%s: raw must not be NULL (n is %zu)", fn, n);
  if (n && !xyz) return ngi_fail(rt, NG_EINVAL, "%s: xyz must not be NULL (n is %zu)", fn, n);
  ng_status st = ngi_check_space(rt, fn, space);
  if (st != NG_OK) return st;
  ngi_read_lock(rt);
  for (size_t i = 0; i < 3 * n; i++)
    xyz[i] = ngi_unit_decode(&rt->units[space], raw[i]);
  ngi_read_unlock(rt);
  return NG_OK;
}
