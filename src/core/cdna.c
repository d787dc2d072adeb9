/* The CDNA block's pure functions: profile names, presets, the checksum and validation. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The build fails if the block drifts from its on-disk layout (the field offsets below). */
#define NGI_AT(field, off) _Static_assert(offsetof(ng_cdna, field) == (off), "ng_cdna." #field)
NGI_AT(magic, 0);
NGI_AT(version_major, 4);
NGI_AT(version_minor, 6);
NGI_AT(created_at, 8);
NGI_AT(modified_at, 16);
NGI_AT(profile_id, 24);
NGI_AT(profile_state, 28);
NGI_AT(flags, 32);
NGI_AT(reserved1, 36);
NGI_AT(checksum, 40);
NGI_AT(reserved2, 48);
NGI_AT(dimension_ids, 64);
NGI_AT(dimension_flags, 72);
NGI_AT(dimension_scales, 80);
NGI_AT(bucket_sizes, 112);
NGI_AT(field_strength_limits, 144);
NGI_AT(reserved3, 176);
NGI_AT(allowed_connection_types, 192);
NGI_AT(max_out_degree, 200);
NGI_AT(max_in_degree, 204);
NGI_AT(max_total_degree, 208);
NGI_AT(min_weight_threshold, 212);
NGI_AT(max_weight_threshold, 216);
NGI_AT(reserved4, 220);
NGI_AT(min_token_weight, 256);
NGI_AT(max_token_weight, 260);
NGI_AT(min_field_radius, 264);
NGI_AT(max_field_radius, 266);
NGI_AT(min_field_strength, 268);
NGI_AT(max_field_strength, 270);
NGI_AT(reserved5, 272);
NGI_AT(min_connection_weight, 288);
NGI_AT(max_connection_weight, 292);
NGI_AT(min_rigidity, 296);
NGI_AT(max_rigidity, 300);
NGI_AT(default_pull_strength, 304);
NGI_AT(decay_rate, 308);
NGI_AT(reserved6, 312);
NGI_AT(mutation_rate, 352);
NGI_AT(crossover_rate, 356);
NGI_AT(selection_pressure, 360);
NGI_AT(evolution_flags, 364);
NGI_AT(trace_sample_rate, 368);
NGI_AT(reserved7, 372);
#undef NGI_AT

/* The checksum skips its own eight bytes. */
#define CHECKSUM_OFFSET 40u

/* ---- profiles ----------------------------------------------------------- */

const char *ng_profile_name(uint32_t profile) {
  switch (profile) {
  case NG_PROFILE_DEFAULT:
    return "Default";
  case NG_PROFILE_EXPLORER:
    return "Explorer";
  case NG_PROFILE_ANALYST:
    return "Analyst";
  case NG_PROFILE_CREATIVE:
    return "Creative";
  case NG_PROFILE_CUSTOM:
    return "Custom";
  default:
    return NULL;
  }
}

int ng_profile_from_name(const char *name) {
  static const int profiles[] = {NG_PROFILE_DEFAULT, NG_PROFILE_EXPLORER, NG_PROFILE_ANALYST,
                                 NG_PROFILE_CREATIVE, NG_PROFILE_CUSTOM};
  if (!name) return -1;
  for (size_t i = 0; i < sizeof profiles / sizeof profiles[0]; i++)
    if (strcmp(name, ng_profile_name((uint32_t)profiles[i])) == 0) return profiles[i];
  return -1;
}

/* ---- checksum and defaults ---------------------------------------------- */

/* needs: c non-NULL (NULL gives 0). guarantees: 64-bit FNV-1a over the 384
 * bytes in memory order, skipping offsets 40..47; reserved bytes count. */
uint64_t ng_cdna_checksum(const ng_cdna *c) {
  if (!c) return 0;
  unsigned char bytes[sizeof(ng_cdna)];
  memcpy(bytes, c, sizeof bytes);
  uint64_t h = 14695981039346656037u;
  for (size_t i = 0; i < sizeof bytes; i++) {
    if (i >= CHECKSUM_OFFSET && i < CHECKSUM_OFFSET + sizeof c->checksum) continue;
    h ^= bytes[i];
    h *= 1099511628211u;
  }
  return h;
}

/* The one home of the profiles' presets (the original's with_profile): the
 * fields each profile defines, and nothing else; flag bits are added, never
 * cleared. Default and Custom define only the profile id. */
void ngi_cdna_apply_preset(ng_cdna *d, uint32_t profile) {
  d->profile_id = profile;
  switch (profile) {
  case NG_PROFILE_EXPLORER:
    d->max_out_degree = 2000;
    d->max_total_degree = 4000;
    d->mutation_rate = 0.05f;
    break;
  case NG_PROFILE_ANALYST:
    d->max_out_degree = 500;
    d->max_total_degree = 1000;
    d->flags |= NG_CDNA_STRICT_MODE;
    break;
  case NG_PROFILE_CREATIVE:
    d->mutation_rate = 0.1f;
    d->crossover_rate = 0.2f;
    d->flags |= NG_CDNA_ENABLE_MUTATION;
    break;
  default:
    break;
  }
}

/* needs: c non-NULL; profile one of NG_PROFILE_*. guarantees: the reference's
 * CDNA::new() with the profile's preset applied, timestamps `now`, checksum
 * computed; every reserved byte 0. fails: NG_EINVAL with c untouched. */
ng_status ng_cdna_init(ng_cdna *c, uint32_t profile, uint64_t now) {
  if (!c || !ng_profile_name(profile)) return NG_EINVAL;
  ng_cdna d;
  memset(&d, 0, sizeof d);
  d.magic = NG_CDNA_MAGIC;
  d.version_major = NG_CDNA_VERSION_MAJOR;
  d.version_minor = NG_CDNA_VERSION_MINOR;
  d.created_at = now;
  d.modified_at = now;
  d.profile_state = NG_PSTATE_ACTIVE | NG_PSTATE_VALIDATED;
  d.flags = NG_CDNA_ENABLE_VALIDATION | NG_CDNA_ENABLE_EVENTS;
  for (int s = 0; s < NG_SPACES; s++) {
    d.dimension_ids[s] = (uint8_t)s;
    d.dimension_flags[s] = 0xFF;
    d.dimension_scales[s] = 1.0f;
    d.bucket_sizes[s] = 10.0f;
    d.field_strength_limits[s] = 1.0f;
  }
  d.allowed_connection_types = UINT64_MAX;
  d.max_out_degree = 1000;
  d.max_in_degree = 1000;
  d.max_total_degree = 2000;
  d.min_weight_threshold = 0.0f;
  d.max_weight_threshold = 1.0f;
  d.min_token_weight = 0.0f;
  d.max_token_weight = 1.0f;
  d.min_field_radius = 0;
  d.max_field_radius = 255;
  d.min_field_strength = 0;
  d.max_field_strength = 255;
  d.min_connection_weight = 0.0f;
  d.max_connection_weight = 1.0f;
  d.min_rigidity = 0.0f;
  d.max_rigidity = 1.0f;
  d.default_pull_strength = 0.5f;
  d.decay_rate = 0.01f;
  d.mutation_rate = 0.01f;
  d.crossover_rate = 0.1f;
  d.selection_pressure = 0.5f;
  d.evolution_flags = 0;
  d.trace_sample_rate = 0.01f;
  ngi_cdna_apply_preset(&d, profile);
  d.checksum = ng_cdna_checksum(&d);
  *c = d;
  return NG_OK;
}

/* ---- validation --------------------------------------------------------- */

#define REJECT(status, ...) return ngi_reject(status, why, why_size, __VA_ARGS__)

/* A float field that must be finite and within [lo, hi]. */
#define CHECK_RANGE(name, v, lo, hi)                                                               \
  do {                                                                                             \
    if (!ngi_finite(v) || (v) < (lo) || (v) > (hi))                                                \
      REJECT(NG_EINVAL, "%s (%g) must be a finite number within %g..%g", name, (double)(v),        \
             (double)(lo), (double)(hi));                                                          \
  } while (0)

/* A finite min/max pair with min <= max. */
#define CHECK_PAIR(lo_name, lo, hi_name, hi)                                                       \
  do {                                                                                             \
    if (!ngi_finite(lo))                                                                           \
      REJECT(NG_EINVAL, "%s (%g) must be a finite number", lo_name, (double)(lo));                 \
    if (!ngi_finite(hi))                                                                           \
      REJECT(NG_EINVAL, "%s (%g) must be a finite number", hi_name, (double)(hi));                 \
    if ((lo) > (hi))                                                                               \
      REJECT(NG_EINVAL, "%s (%g) is greater than %s (%g)", lo_name, (double)(lo), hi_name,         \
             (double)(hi));                                                                        \
  } while (0)

/* needs: c non-NULL (NULL is NG_EINVAL); why may be NULL. guarantees: reads
 * only the 384 bytes of *c; checks in a fixed order and reports the first
 * failure, naming the field and its value. fails: NG_ECORRUPT for magic,
 * version or checksum (the block is not a CDNA), NG_EINVAL for the rest. */
ng_status ng_cdna_validate(const ng_cdna *c, char *why, size_t why_size) {
  if (why && why_size > 0) why[0] = '\0';
  if (!c) REJECT(NG_EINVAL, "cdna is NULL");
  if (c->magic != NG_CDNA_MAGIC)
    REJECT(NG_ECORRUPT, "magic (0x%08lx) is not 0x%08lx", (unsigned long)c->magic,
           (unsigned long)NG_CDNA_MAGIC);
  if (c->version_major != NG_CDNA_VERSION_MAJOR)
    REJECT(NG_ECORRUPT, "version_major (%u) is not %u", (unsigned)c->version_major,
           (unsigned)NG_CDNA_VERSION_MAJOR);
  uint64_t sum = ng_cdna_checksum(c);
  if (c->checksum != sum)
    REJECT(NG_ECORRUPT, "checksum (0x%016llx) does not match the contents (0x%016llx)",
           (unsigned long long)c->checksum, (unsigned long long)sum);
  if (c->modified_at < c->created_at)
    REJECT(NG_EINVAL, "modified_at (%llu) is earlier than created_at (%llu)",
           (unsigned long long)c->modified_at, (unsigned long long)c->created_at);
  if (!ng_profile_name(c->profile_id))
    REJECT(NG_EINVAL, "profile_id (%lu) is not a known profile (0, 1, 2, 3 or 255)",
           (unsigned long)c->profile_id);

  for (int s = 0; s < NG_SPACES; s++) {
    float v = c->dimension_scales[s];
    /* The bounds keep every decoded value and step a normal float. */
    if (!ngi_finite(v) || v < 1e-6f || v > 1e6f)
      REJECT(NG_EINVAL, "dimension_scales[%d] (scale of L%d) must be within 0.000001..1000000, got %g",
             s, s + 1, (double)v);
  }
  for (int s = 0; s < NG_SPACES; s++) {
    float v = c->bucket_sizes[s];
    if (!ngi_finite(v) || v <= 0.0f)
      REJECT(NG_EINVAL, "bucket_sizes[%d] (%g) must be a finite number > 0", s, (double)v);
  }
  for (int s = 0; s < NG_SPACES; s++) {
    float v = c->field_strength_limits[s];
    if (!ngi_finite(v) || v < 0.0f)
      REJECT(NG_EINVAL, "field_strength_limits[%d] (%g) must be a finite number >= 0", s,
             (double)v);
  }

  if (c->max_out_degree < 1) REJECT(NG_EINVAL, "max_out_degree (0) must be at least 1");
  if (c->max_in_degree < 1) REJECT(NG_EINVAL, "max_in_degree (0) must be at least 1");
  if (c->max_total_degree < 1) REJECT(NG_EINVAL, "max_total_degree (0) must be at least 1");
  CHECK_PAIR("min_weight_threshold", c->min_weight_threshold, "max_weight_threshold",
             c->max_weight_threshold);

  CHECK_PAIR("min_token_weight", c->min_token_weight, "max_token_weight", c->max_token_weight);
  if (c->max_field_radius > 255)
    REJECT(NG_EINVAL, "max_field_radius (%u) must be at most 255", (unsigned)c->max_field_radius);
  if (c->min_field_radius > c->max_field_radius)
    REJECT(NG_EINVAL, "min_field_radius (%u) is greater than max_field_radius (%u)",
           (unsigned)c->min_field_radius, (unsigned)c->max_field_radius);
  if (c->max_field_strength > 255)
    REJECT(NG_EINVAL, "max_field_strength (%u) must be at most 255",
           (unsigned)c->max_field_strength);
  if (c->min_field_strength > c->max_field_strength)
    REJECT(NG_EINVAL, "min_field_strength (%u) is greater than max_field_strength (%u)",
           (unsigned)c->min_field_strength, (unsigned)c->max_field_strength);

  CHECK_PAIR("min_connection_weight", c->min_connection_weight, "max_connection_weight",
             c->max_connection_weight);
  CHECK_RANGE("min_rigidity", c->min_rigidity, 0.0f, 1.0f);
  CHECK_RANGE("max_rigidity", c->max_rigidity, 0.0f, 1.0f);
  if (c->min_rigidity > c->max_rigidity)
    REJECT(NG_EINVAL, "min_rigidity (%g) is greater than max_rigidity (%g)",
           (double)c->min_rigidity, (double)c->max_rigidity);
  if (!ngi_finite(c->default_pull_strength))
    REJECT(NG_EINVAL, "default_pull_strength (%g) must be a finite number",
           (double)c->default_pull_strength);
  CHECK_RANGE("decay_rate", c->decay_rate, 0.0f, 1.0f);

  CHECK_RANGE("mutation_rate", c->mutation_rate, 0.0f, 1.0f);
  CHECK_RANGE("crossover_rate", c->crossover_rate, 0.0f, 1.0f);
  CHECK_RANGE("selection_pressure", c->selection_pressure, 0.0f, 1.0f);
  CHECK_RANGE("trace_sample_rate", c->trace_sample_rate, 0.0f, 1.0f);
  return NG_OK;
}
