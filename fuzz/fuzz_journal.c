/* libFuzzer target for the journal's replay: every input is replayed as the newest journal of
 * an empty world, as is and again with its header and record checksums repaired (records
 * walked by their lengths) so the fuzzer also reaches the entries and the store's paths. */
#include "exercise.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void replay(const uint8_t *data, size_t size) {
  ng_runtime *rt = NULL;
  if (ng_runtime_new(NULL, &rt) != NG_OK) return;
  uint64_t commit = 0;
  size_t end = 0;
  ng_status st = ngi_journal_replay(rt, data, size, "fuzz", true, &commit, &end);
  if (st == NG_OK) {
    if (end < 64) __builtin_trap();
    exercise(rt);
  } else if (st != NG_ECORRUPT && st != NG_EVERSION && st != NG_ENOMEM) {
    __builtin_trap();
  }
  ng_runtime_release(rt);
}

static uint32_t get32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  replay(data, size);
  if (size < 64) return 0;
  uint32_t hs = get32(data + 12);
  if (hs < 64 || hs > 4096 || hs % 8 || hs > size) return 0;
  uint8_t *b = malloc(size);
  if (!b) return 0;
  memcpy(b, data, size);
  uint32_t crc = ngi_crc32c(0, b, hs - 4);
  memcpy(b + hs - 4, &crc, 4);
  for (size_t off = hs; off + 16 <= size;) { /* docs/format.md, "Journal file" */
    uint32_t len = get32(b + off);
    if (len < 16 || len > size - off) break;
    crc = ngi_crc32c(ngi_crc32c(0, b + off + 8, len - 8), b + off, 4);
    memcpy(b + off + 4, &crc, 4);
    off = (off + len + 7) & ~(size_t)7;
  }
  replay(b, size);
  free(b);
  return 0;
}
