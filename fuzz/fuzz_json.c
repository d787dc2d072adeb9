/* libFuzzer target for the JSON importer (ng_import_json): every input is imported from a file
 * (the importer reads a path); a document it accepts must give a consistent runtime, and one it
 * refuses must leave nothing behind and say NG_ECORRUPT (or NG_ENOMEM). */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static char path[64];
  if (!path[0]) snprintf(path, sizeof path, "/tmp/ng-fuzz-json-%ld.json", (long)getpid());
  FILE *f = fopen(path, "wb");
  if (!f) return 0;
  size_t put = fwrite(data, 1, size, f);
  fclose(f);
  if (put != size) return 0;
  ng_runtime *rt = NULL;
  ng_status st = ng_import_json(path, NULL, &rt);
  if (st == NG_OK) {
    if (!rt) __builtin_trap();
    ng_stats s;
    if (ng_runtime_stats(rt, &s) != NG_OK) __builtin_trap();
    size_t n = 0;
    for (ng_id id = 0; ng_token_next(rt, id, &id) == NG_OK;)
      n++;
    if (n != s.tokens) __builtin_trap();
    float c[3] = {0, 0, 0};
    ng_hits hits = {0};
    if (ng_grid_nearest(rt, NG_L1, c, 4, NULL, &hits) != NG_OK) __builtin_trap();
    ng_hits_free(rt, &hits);
    ng_runtime_release(rt);
  } else if (rt || (st != NG_ECORRUPT && st != NG_ENOMEM)) {
    __builtin_trap();
  }
  return 0;
}
