/* Writes real snapshots (empty, small, with holes, every space and connection field, reused
 * slots) into a directory, as seeds for fuzz_snapshot, the same worlds as JSON exports into a
 * second one, as seeds for fuzz_json, and a journal of every kind of commit into a third, as a
 * seed for fuzz_journal. Usage: make_seeds DIR [JSON_DIR [JOURNAL_DIR]] */
#include "internal.h"

#include <stdio.h>
#include <unistd.h>

/* A durable world in JOURNAL_DIR/world taking creates, updates of every field (deltas), moves,
 * places and unplaces, links, transactions, deletes (with their cascades) and a CDNA change; its
 * journal is kept as journal-seed.ngj: every entry kind. */
static int journal_seed(const char *dir) {
  char world[1024], from[1200], to[1200];
  snprintf(world, sizeof world, "%s/world", dir);
  ng_open_options o = {.sync = NG_SYNC_OFF};
  ng_runtime *rt = NULL;
  if (ng_runtime_open(world, &o, &rt) != NG_OK) {
    fprintf(stderr, "make_seeds: %s\n", ng_last_error(NULL));
    return 1;
  }
  ng_id ids[6];
  for (unsigned i = 0; i < 6; i++) {
    ng_token t;
    ng_token_init(&t);
    ng_token_set_coords(&t, (int)i % NG_SPACES, (float)i, 1.0f, -1.0f);
    t.weight = (float)i;
    ng_token_create(rt, &t, 1u << (i % NG_SPACES), &ids[i]);
  }
  for (unsigned i = 0; i < 5; i++)
    ng_connection_create(rt, ids[i], ids[i + 1], NULL, NULL);
  ng_token v; /* updates, journaled as deltas: every field, places and unplaces */
  ng_token_init(&v);
  v.weight = 7;
  ng_token_update(rt, ids[0], &v, NG_TF_WEIGHT | NG_TF_COORDS(0));
  v.flags = NG_TOKEN_ACTIVE | 3u << 8;
  v.id = ng_make_id(0, 0, 5);
  v.field_radius = 9;
  v.field_strength = 200;
  v.timestamp = 12345;
  ng_token_update(rt, ids[1], &v,
                  (NG_TF_ALL & ~(uint32_t)NG_TF_COORDS_ALL) | NG_TF_COORDS(3) | NG_TF_UNPLACE(1));
  ng_token_update(rt, ids[3], &v, NG_TF_ENTITY | NG_TF_UNPLACE(3));
  ng_txn_begin(rt); /* a token touched twice around another's update */
  ng_token_update(rt, ids[4], &v, NG_TF_DOMAIN | NG_TF_COORDS(7));
  ng_token_update(rt, ids[5], &v, NG_TF_FIELD_STRENGTH);
  ng_token_update(rt, ids[4], &v, NG_TF_TIMESTAMP | NG_TF_UNPLACE(7) | NG_TF_COORDS(6));
  ng_txn_commit(rt);
  ng_txn_begin(rt);
  ng_id extra = 0;
  ng_token_create(rt, NULL, 0, &extra);
  ng_token_delete(rt, extra, NULL);
  ng_token_delete(rt, ids[2], NULL);
  ng_txn_commit(rt);
  ng_connection_delete(rt, 1);
  ng_cdna c;
  ng_cdna_get(rt, &c);
  c.dimension_scales[1] = 2.0f;
  ng_cdna_set(rt, &c);
  ng_runtime_release(rt);
  snprintf(from, sizeof from, "%s/journal-%020d.ngj", world, 0);
  snprintf(to, sizeof to, "%s/journal-seed.ngj", dir);
  int bad = rename(from, to) != 0;
  snprintf(from, sizeof from, "%s/snapshot-%020d.ngs", world, 0);
  unlink(from);
  rmdir(world);
  return bad;
}

static const char *json_dir; /* NULL: no JSON seeds */

static int save(ng_runtime *rt, const char *dir, const char *name) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  if (ng_snapshot_save(rt, path) != NG_OK) {
    fprintf(stderr, "make_seeds: %s\n", ng_last_error(rt));
    return 1;
  }
  if (!json_dir) return 0;
  snprintf(path, sizeof path, "%s/%s.json", json_dir, name);
  if (ng_export_json(rt, path) != NG_OK) {
    fprintf(stderr, "make_seeds: %s\n", ng_last_error(rt));
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2 || argc > 4) {
    fprintf(stderr, "usage: make_seeds DIR [JSON_DIR [JOURNAL_DIR]]\n");
    return 2;
  }
  json_dir = argc >= 3 ? argv[2] : NULL;
  if (argc == 4 && journal_seed(argv[3]) != 0) return 1;
  ng_runtime *rt = NULL;
  if (ng_runtime_new(NULL, &rt) != NG_OK) return 1;
  int bad = save(rt, argv[1], "seed-empty.ngs");
  ng_id ids[12];
  for (unsigned i = 0; i < 12; i++) {
    ng_token t;
    ng_token_init(&t);
    for (int s = 0; s < NG_SPACES; s++)
      ng_token_set_coords(&t, s, (float)i * 0.25f - 1.0f, (float)s * 0.125f, -(float)i * 0.0625f);
    ng_token_set_entity(&t, i % 16);
    t.id = ng_make_id(0, 0, i % 4);
    t.weight = (float)i * 0.5f;
    t.timestamp = 1700000000u + i;
    ng_token_set_field_radius(&t, 1.5f);
    ng_token_set_field_strength(&t, 0.8f);
    if (ng_token_create(rt, &t, (unsigned)(i * 37) & 0xFFu, &ids[i]) != NG_OK) return 1;
  }
  bad |= save(rt, argv[1], "seed-tokens.ngs");
  for (unsigned i = 0; i < 10; i++) {
    ng_connection c;
    ng_connection_init(&c);
    ng_connection_set_type(&c, (i * 17) % NG_CONN_TYPES);
    c.flags = (uint8_t)(i % 2 ? NG_CONN_BIDIRECTIONAL : NG_CONN_ACTIVE);
    c.pull_strength = (float)i - 4.5f;
    c.preferred_distance = 1.0f + (float)i;
    c.created_at = c.last_update = 1700000000u + i;
    c.source_id = i;
    c.target_vector[i % NG_SPACES] = (int16_t)(i * 100);
    ng_connection_create(rt, ids[i], ids[(i * 5 + 1) % 12], &c, NULL);
  }
  bad |= save(rt, argv[1], "seed-connections.ngs");
  ng_token_delete(rt, ids[3], NULL); /* holes in both id sequences */
  ng_connection_delete(rt, 2);
  ng_cdna_set_profile(rt, NG_PROFILE_ANALYST);
  bad |= save(rt, argv[1], "seed-holes.ngs");
  ng_runtime_release(rt);

  /* Reused slots in a small file: with the last fresh connection slots used, a freed slot
   * comes back at once, one generation up; one more freed slot stays pending. (Token slots
   * stay low: a token's slot indexes the store, so the last ones would make every load of
   * this seed allocate the whole slot map.) */
  if (ng_runtime_new(NULL, &rt) != NG_OK) return 1;
  ngi_conns_skip_slots(rt, NG_CONNECTION_SLOT_MAX - 3);
  ng_id t[6], c[6];
  for (unsigned i = 0; i < 4; i++)
    if (ng_token_create(rt, NULL, NG_TF_COORDS_ALL, &t[i]) != NG_OK) return 1;
  for (unsigned i = 0; i < 4; i++)
    if (ng_connection_create(rt, t[i], t[(i + 1) % 4], NULL, &c[i]) != NG_OK) return 1;
  ng_token_delete(rt, t[1], NULL); /* takes connections 0 and 1 along */
  if (ng_token_create(rt, NULL, 0, &t[4]) != NG_OK) return 1;
  for (unsigned i = 4; i < 6; i++)
    if (ng_connection_create(rt, t[4], t[i == 4 ? 0 : 2], NULL, &c[i]) != NG_OK) return 1;
  ng_connection_delete(rt, c[2]);
  bad |= save(rt, argv[1], "seed-generations.ngs");
  ng_runtime_release(rt);
  return bad;
}
