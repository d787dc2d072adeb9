/* libFuzzer target for the snapshot loader: every input is loaded as is, and again with its
 * checksums repaired so the fuzzer also reaches the record checks and the runtime building. */
#include "exercise.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void load(const uint8_t *data, size_t size) {
  ng_runtime *rt = NULL;
  ng_status st = ngi_snapshot_load_mem(data, size, NULL, "fuzz", &rt);
  if (st == NG_OK) {
    if (!rt) __builtin_trap();
    exercise(rt);
    ng_runtime_release(rt);
  } else if (rt || (st != NG_ECORRUPT && st != NG_EVERSION && st != NG_ENOMEM)) {
    __builtin_trap();
  }
}

static uint32_t get32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
static uint64_t get64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  load(data, size);
  /* Repair the checksums (docs/format.md: three sections in format 1, a fourth, the ids, in
   * format 2) and load again. */
  if (size < 80) return 0;
  uint32_t hs = get32(data + 12);
  if (hs < 80 || hs > 4096 || hs % 4 || hs > size) return 0;
  uint8_t *b = malloc(size);
  if (!b) return 0;
  memcpy(b, data, size);
  uint32_t crc = ngi_crc32c(0, b, hs - 4);
  memcpy(b + hs - 4, &crc, 4);
  uint64_t off = hs;
  uint64_t lens[4] = {get64(b + 48), get64(b + 56), get64(b + 64), get64(b + 40)};
  int sections = b[8] >= 2 ? 4 : 3; /* the major version's low byte */
  for (int s = 0; s < sections; s++) {
    if (lens[s] > size || off + lens[s] + 4 > size) break;
    crc = ngi_crc32c(0, b + off, (size_t)lens[s]);
    memcpy(b + off + lens[s], &crc, 4);
    off += lens[s] + 4;
  }
  load(b, size);
  free(b);
  return 0;
}
