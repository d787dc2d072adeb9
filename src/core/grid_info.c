/* ng_grid_info: the count, exact bounds and cells of a space's index. */
#include "grid_index.h"

#include <string.h>

/* Floor of a / b for b > 0 (C division truncates toward zero). */
static int32_t floor_div(int32_t a, int32_t b) {
  int32_t q = a / b;
  if (a % b != 0 && a < 0) q--;
  return q;
}

typedef struct info_acc {
  const ngi_grid *g;
  uint64_t *keys; /* open-addressing set of configured-cell keys + 1; 0 = empty */
  size_t cap, cells, count;
  int32_t lo[3], hi[3];
} info_acc;

static void info_add(info_acc *acc, uint32_t ux, uint32_t uy, uint32_t uz) {
  const int32_t cs = acc->g->cs;
  int32_t r[3] = {(int32_t)ux - NGI_BIAS, (int32_t)uy - NGI_BIAS, (int32_t)uz - NGI_BIAS};
  uint64_t key = 1;
  for (int a = 0; a < 3; a++) {
    acc->lo[a] = r[a] < acc->lo[a] ? r[a] : acc->lo[a];
    acc->hi[a] = r[a] > acc->hi[a] ? r[a] : acc->hi[a];
    key += (uint64_t)(uint16_t)(int16_t)floor_div(r[a], cs) << (16 * a + 1);
  }
  acc->count++;
  size_t mask = acc->cap - 1;
  size_t i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & mask;
  while (acc->keys[i] != 0 && acc->keys[i] != key)
    i = (i + 1) & mask;
  if (acc->keys[i] == 0) {
    acc->keys[i] = key;
    acc->cells++;
  }
}

/* needs: g complete, its qlock held. guarantees: the count, the exact bounds
 * and the number of non-empty cells of the configured size, from one pass over
 * the index. fails: NG_ENOMEM (the temporary cell set). */
static ng_status info_collect(ng_runtime *rt, const ngi_grid *g, ng_space_info *out) {
  const mainix *m = &g->m;
  const ngi_token_table *t = &rt->tokens;
  /* An index not built yet answers from the token table (and stays unbuilt). */
  size_t total = g->built ? m->n - m->nstale + g->side_count : t->nplaced[g->space];
  out->count = total;
  if (total == 0) return NG_OK;
  /* Small indexes count their cells in a buffer on the stack (no allocation). */
  uint64_t local[512];
  info_acc acc = {.g = g, .cap = 16};
  while (acc.cap < total * 2)
    acc.cap *= 2;
  acc.keys = acc.cap <= 512 ? local : ngi_alloc_array(rt, acc.cap, sizeof(uint64_t));
  if (!acc.keys) return NG_ENOMEM;
  memset(acc.keys, 0, acc.cap * sizeof(uint64_t));
  for (int a = 0; a < 3; a++) {
    acc.lo[a] = INT32_MAX;
    acc.hi[a] = INT32_MIN;
  }
  if (!g->built) {
    for (size_t i = 0; i < t->len; i++) {
      const ng_token *tok = ngi_tok_at(t, i);
      uint32_t slot = NG_ID_LOCAL(tok->id);
      if (slot == 0 || !(ngi_placed(t, slot) & (1u << g->space))) continue;
      uint16_t u[3];
      ngi_tok_u(tok, g->space, u);
      info_add(&acc, u[0], u[1], u[2]);
    }
  } else if (m->n) {
    for (uint32_t x = 0; x < m->nc[0]; x++)
      for (uint32_t y = 0; y < m->nc[1]; y++)
        for (uint32_t z = 0; z < m->nc[2]; z++) {
          uint32_t idx = (x * m->nc[1] + y) * m->nc[2] + z;
          uint32_t bx = (m->c0[0] + x) << m->shift[0], by = (m->c0[1] + y) << m->shift[1],
                   bz = (m->c0[2] + z) << m->shift[2];
          for (uint32_t i = m->starts[idx]; i < m->starts[idx + 1]; i++) {
            uint64_t e = m->ent[i];
            if (m->nstale && ngi_stale_get(m, (uint32_t)(e & NGI_ID_MASK))) continue;
            uint32_t off[3];
            ngi_unpack(e, off);
            info_add(&acc, bx + off[0], by + off[1], bz + off[2]);
          }
        }
  }
  for (size_t i = 0; g->built && i < g->side_used; i++)
    if (g->side[i].id) info_add(&acc, g->side[i].u[0], g->side[i].u[1], g->side[i].u[2]);
  if (acc.keys != local) ngi_free(rt, acc.keys, acc.cap * sizeof(uint64_t));
  out->cells = acc.cells;
  for (int a = 0; a < 3; a++) {
    out->lo[a] = ngi_decode_u(g, (uint32_t)(acc.lo[a] + NGI_BIAS));
    out->hi[a] = ngi_decode_u(g, (uint32_t)(acc.hi[a] + NGI_BIAS));
  }
  return NG_OK;
}

ng_status ng_grid_info(ng_runtime *rt, int space, ng_space_info *out) {
  static const char fn[] = "ng_grid_info";
  if (!rt) return ngi_fail(NULL, NG_EINVAL, "%s: runtime must not be NULL", fn);
  if (!out) return ngi_fail(rt, NG_EINVAL, "%s: out must not be NULL", fn);
  if (space < 0 || space >= NG_SPACES)
    return ngi_fail(rt, NG_EINVAL, "%s: space must be 0..7, got %d", fn, space);
  memset(out, 0, sizeof *out);
  ng_status st = NG_OK;
  ngi_read_lock(rt);
  ngi_grid *g = rt->grids[space];
  if (g) {
    out->cell_size = g->cell_size;
    out->step = ngi_unit_decode(&g->unit, 1);
    out->min = ngi_unit_decode(&g->unit, -32768);
    out->max = ngi_unit_decode(&g->unit, 32767);
    /* An unbuilt index is not built for this: info reads the table. */
    ngi_grid_hold(g);
    if (g->built) {
      ngi_grid_release(g);
      st = ngi_grid_acquire(rt, g); /* absorbs new tokens first */
      if (st == NG_OK) {
        st = info_collect(rt, g, out);
        ngi_grid_release(g);
      }
    } else {
      st = info_collect(rt, g, out);
      ngi_grid_release(g);
    }
  }
  ngi_read_unlock(rt);
  if (st != NG_OK) {
    ng_space_info keep = *out;
    memset(out, 0, sizeof *out);
    out->cell_size = keep.cell_size;
    out->step = keep.step;
    out->min = keep.min;
    out->max = keep.max;
  }
  if (st == NG_ENOMEM) return ngi_fail(rt, NG_ENOMEM, "%s: out of memory", fn);
  return st;
}
