/* Pure record functions: spaces, entity names, the fixed-point codecs, token and connection fields,
 * connection type names, the learning rules and the record rules (no runtime involved). */
#include "internal.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The build fails if a record drifts from its on-disk layout (docs/format.md). */
#define NGI_AT(type, field, off) _Static_assert(offsetof(type, field) == (off), #type "." #field)
NGI_AT(ng_token, coords, 0);
NGI_AT(ng_token, id, 48);
NGI_AT(ng_token, flags, 52);
NGI_AT(ng_token, weight, 54);
NGI_AT(ng_token, field_radius, 58);
NGI_AT(ng_token, field_strength, 59);
NGI_AT(ng_token, timestamp, 60);
NGI_AT(ng_connection, token_a_id, 0);
NGI_AT(ng_connection, token_b_id, 4);
NGI_AT(ng_connection, connection_type, 8);
NGI_AT(ng_connection, rigidity, 9);
NGI_AT(ng_connection, active_levels, 10);
NGI_AT(ng_connection, flags, 11);
NGI_AT(ng_connection, activation_count, 12);
NGI_AT(ng_connection, pull_strength, 16);
NGI_AT(ng_connection, preferred_distance, 20);
NGI_AT(ng_connection, created_at, 24);
NGI_AT(ng_connection, last_activation, 28);
NGI_AT(ng_connection, mutability, 32);
NGI_AT(ng_connection, confidence, 33);
NGI_AT(ng_connection, evidence_count, 34);
NGI_AT(ng_connection, last_update, 36);
NGI_AT(ng_connection, learning_rate, 40);
NGI_AT(ng_connection, decay_rate, 41);
NGI_AT(ng_connection, padding1, 42);
NGI_AT(ng_connection, source_id, 44);
NGI_AT(ng_connection, target_vector, 48);
_Static_assert(sizeof(((ng_token *)0)->coords) == 48, "ng_token.coords is i16[8][3]");
_Static_assert(sizeof(((ng_connection *)0)->target_vector) == 16, "target_vector is i16[8]");
#undef NGI_AT

/* ---- spaces ------------------------------------------------------------- */

static const float space_scales[NG_SPACES] = {100.0f,   10000.0f, 1000.0f, 10000.0f,
                                              10000.0f, 10000.0f, 100.0f,  10000.0f};
static const char *const space_names[NG_SPACES] = {"L1", "L2", "L3", "L4", "L5", "L6", "L7", "L8"};
static const char *const space_aliases[NG_SPACES] = {
    "physical", "sensory", "motor", "emotional", "cognitive", "social", "temporal", "abstract"};

static int space_ok(int space) {
  return space >= 0 && space < NG_SPACES;
}

float ng_space_scale(int space) {
  return space_ok(space) ? space_scales[space] : 0.0f;
}
const char *ng_space_name(int space) {
  return space_ok(space) ? space_names[space] : NULL;
}
const char *ng_space_alias(int space) {
  return space_ok(space) ? space_aliases[space] : NULL;
}

/* needs: name may be NULL. guarantees: 0..7 for "L1".."L8" or an alias, else -1. */
int ng_space_from_name(const char *name) {
  if (!name) return -1;
  if (name[0] == 'L' && name[1] >= '1' && name[1] <= '8' && name[2] == '\0') return name[1] - '1';
  for (int s = 0; s < NG_SPACES; s++)
    if (strcmp(name, space_aliases[s]) == 0) return s;
  return -1;
}

/* ---- entity types ------------------------------------------------------- */

static const char *const entity_names[NG_ENTITY_COUNT] = {
    "Undefined", "Object", "Event",  "State",  "Process",  "Concept",    "Relation", "Pattern",
    "Rule",      "Goal",   "Memory", "Sensor", "Actuator", "Controller", "Buffer",   "Reserved"};

const char *ng_entity_name(unsigned entity) {
  return entity < NG_ENTITY_COUNT ? entity_names[entity] : NULL;
}

int ng_entity_from_name(const char *name) {
  if (!name) return -1;
  for (int e = 0; e < NG_ENTITY_COUNT; e++)
    if (strcmp(name, entity_names[e]) == 0) return e;
  return -1;
}

/* ---- float -> integer conversions --------------------------------------- */

/* Clamp a scaled value into [lo, hi] in float, NaN -> 0, so the integer
 * conversion that follows is always in range (a C cast of NaN or of an
 * out-of-range float is undefined behaviour; Rust's `as` saturates). */
static float clamp_scaled(float v, float lo, float hi) {
  if (v != v) return 0.0f;
  if (v < lo) return lo;
  if (v > hi) return hi;
  return v;
}

/* trunc(v) as a byte, saturating at 0 and 255, NaN -> 0 (Rust `v as u8`). */
static uint8_t u8_trunc(float v) {
  return (uint8_t)clamp_scaled(v, 0.0f, 255.0f);
}

/* ---- the fixed-point codec ---------------------------------------------- */

/* The codec stores a value v as the integer nearest below v / unit in
 * magnitude (truncation toward zero, as the original), with one exception,
 * the original's bug fixed: a value that IS a whole number k of units reads
 * back as itself. The original multiplied in single precision, so 0.53 * 100
 * gave 52.999996 and 0.53 stored as 52 (4,582 of the 65,536 L1 values, and 14
 * of the 256 field radii, read back one step low). Here k is taken whenever
 * decode(k) equals v, compared as a double (what Lua passes) or as a float
 * (what a C caller passes, widened), and everything else truncates. */

int ngi_unit_encode(const ngi_unit *u, double v, int32_t lo, int32_t hi, int32_t *raw) {
  if (v != v) {
    *raw = 0;
    return NGI_ENC_NAN;
  }
  double q = v / u->scale * u->base; /* the original's encode of v / scale */
  if (!(q > (double)lo - 1.0)) {
    *raw = lo;
    return NGI_ENC_RANGE;
  }
  if (!(q < (double)hi + 1.0)) {
    *raw = hi;
    return NGI_ENC_RANGE;
  }
  double k = nearbyint(q);
  if (k >= (double)lo && k <= (double)hi) {
    int32_t r = (int32_t)k;
    /* k as it reads back, in double or float, or as the caller writes it
     * (k x scale / base in one rounding: 7 at scale 100 reads back as
     * 7 / 100 x 100 = 7.000000000000001, and is stored as 7 either way) */
    if (ngi_unit_decode(u, r) == v || (double)ngi_unit_decode_f(u, r) == v ||
        (double)r * u->scale / u->base == v) {
      *raw = r;
      return NGI_ENC_OK;
    }
  }
  *raw = (int32_t)q; /* truncation toward zero, within lo..hi */
  return NGI_ENC_OK;
}

/* The original's units (scale 1.0: one raw step is 1 / space scale), for the
 * record helpers; and the u8 fields' (field radius value/100, field strength
 * and the fractions value/255). */
#define BASE_UNIT(base) {(base), 1.0, (float)(base), 1.0f}
static const ngi_unit base_units[NG_SPACES] = {
    BASE_UNIT(100.0),   BASE_UNIT(10000.0), BASE_UNIT(1000.0), BASE_UNIT(10000.0),
    BASE_UNIT(10000.0), BASE_UNIT(10000.0), BASE_UNIT(100.0),  BASE_UNIT(10000.0)};
#undef BASE_UNIT

int16_t ng_coord_encode(int space, float v) {
  if (!space_ok(space)) return 0;
  int32_t raw;
  (void)ngi_unit_encode(&base_units[space], (double)v, -32768, 32767, &raw); /* saturates */
  return (int16_t)raw;
}

float ng_coord_decode(int space, int16_t raw) {
  if (!space_ok(space)) return 0.0f;
  return ngi_unit_decode_f(&base_units[space], raw);
}

uint8_t ng_u8_encode(double v, unsigned steps) {
  if (steps == 0 || steps > 65535) return 0;
  ngi_unit u = {(double)steps, 1.0, (float)steps, 1.0f};
  int32_t raw;
  (void)ngi_unit_encode(&u, v, 0, 255, &raw); /* saturates */
  return (uint8_t)raw;
}

/* ---- tokens ------------------------------------------------------------- */

void ng_token_init(ng_token *t) {
  if (!t) return;
  memset(t, 0, sizeof *t);
  t->flags = NG_TOKEN_ACTIVE;
}

ng_status ng_token_set_coords(ng_token *t, int space, float x, float y, float z) {
  if (!t || !space_ok(space)) return NG_EINVAL;
  t->coords[space][0] = ng_coord_encode(space, x);
  t->coords[space][1] = ng_coord_encode(space, y);
  t->coords[space][2] = ng_coord_encode(space, z);
  return NG_OK;
}

ng_status ng_token_get_coords(const ng_token *t, int space, float xyz[3]) {
  if (!t || !xyz || !space_ok(space)) return NG_EINVAL;
  for (int a = 0; a < 3; a++)
    xyz[a] = ng_coord_decode(space, t->coords[space][a]);
  return NG_OK;
}

void ng_token_set_field_radius(ng_token *t, float r) {
  if (t) t->field_radius = ng_u8_encode((double)r, 100);
}

float ng_token_get_field_radius(const ng_token *t) {
  return t ? (float)t->field_radius / 100.0f : 0.0f;
}

void ng_token_set_field_strength(ng_token *t, float s) {
  if (t) t->field_strength = ng_u8_encode((double)s, 255);
}

float ng_token_get_field_strength(const ng_token *t) {
  return t ? (float)t->field_strength / 255.0f : 0.0f;
}

void ng_token_set_entity(ng_token *t, unsigned entity) {
  if (!t) return;
  t->flags = (uint16_t)((t->flags & ~(unsigned)NG_TOKEN_ENTITY_MASK) | ((entity & 0xFu) << 8));
}

unsigned ng_token_get_entity(const ng_token *t) {
  return t ? ((unsigned)t->flags & NG_TOKEN_ENTITY_MASK) >> 8 : 0u;
}

uint32_t ng_make_id(uint32_t local, unsigned entity, unsigned domain) {
  return ((uint32_t)(domain & 0xFu) << 28) | ((uint32_t)(entity & 0xFu) << 24) |
         (local & 0x00FFFFFFu);
}

/* ---- connection types --------------------------------------------------- */

/* clang-format off */
static const char *const conn_type_names[NG_CONN_TYPES] = {
  /* 0x00 Semantic */
  "Synonym", "Antonym", "Hypernym", "Hyponym", "Meronym", "Holonym", "Troponym", "Entailment",
  "Similar", "Also", "Attribute", "Derivation", "Domain", "Topic", "Usage", "Region",
  /* 0x10 Causal */
  "Cause", "Effect", "Precondition", "Postcondition", "EnabledBy", "DisabledBy", "PreventedBy",
  "Triggered", "Influences", "Correlates", "Depends", "Produces", "Consumes", "Modifies",
  "Maintains", "Destroys",
  /* 0x20 Temporal */
  "Before", "After", "During", "Overlaps", "Starts", "Finishes", "Meets", "Equals",
  "Simultaneous", "Sequential", "Parallel", "Periodic", "Continuous", "Discrete", "Instant",
  "Extended",
  /* 0x30 Spatial */
  "Near", "Far", "Above", "Below", "Left", "Right", "Inside", "Outside", "Adjacent",
  "Overlapping", "Touching", "Containing", "Crossing", "Behind", "Front", "Between",
  /* 0x40 Logical */
  "And", "Or", "Not", "Xor", "Implies", "Equivalent", "Contradicts", "Consistent", "Proves",
  "Disproves", "Assumes", "Concludes", "Necessary", "Sufficient", "Possible", "Impossible",
  /* 0x50 Associative */
  "AssociatedWith", "RelatedTo", "SimilarTo", "ContrastedWith", "ComparedTo", "DistinguishedFrom",
  "AlternativeTo", "SubstituteFor", "ComplementOf", "VariantOf", "VersionOf", "ExampleOf",
  "InstanceOf", "KindOf", "FormOf", "ManifestationOf",
  /* 0x60 Structural */
  "PartOf", "HasPart", "MemberOf", "HasMember", "SubclassOf", "SuperclassOf", "Contains",
  "ContainedBy", "Comprises", "ComposedOf", "ElementOf", "HasElement", "CollectionOf", "ItemIn",
  "SegmentOf", "Whole",
  /* 0x70 Functional */
  "UsedFor", "UsedBy", "ToolFor", "MethodFor", "InputTo", "OutputFrom", "ResourceFor",
  "RequiredBy", "ProvidedBy", "CapableOf", "SupportsFunction", "ImplementsFunction",
  "InterfaceFor", "ProtocolFor", "StandardFor", "OptimizedFor",
  /* 0x80 Emotional */
  "Likes", "Dislikes", "Loves", "Hates", "Fears", "Trusts", "Distrusts", "Respects", "Admires",
  "Envies", "Sympathizes", "Empathizes", "Resents", "Forgives", "Blames", "Grateful",
  /* 0x90 Rule/Metaphor */
  "Rule", "Exception", "Constraint", "Permission", "Prohibition", "Obligation", "Metaphor",
  "Analogy", "Symbol", "Represents", "Signifies", "Indicates", "Suggests", "Connotes", "Denotes",
  "References",
  /* 0xA0 Dynamic */
  "Becomes", "Transforms", "Evolves", "Develops", "Grows", "Decays", "Improves", "Degrades",
  "Strengthens", "Weakens", "Accelerates", "Decelerates", "Stabilizes", "Destabilizes", "Cycles",
  "Alternates",
};

/* Type numbers ordered by strcmp of their names, for bsearch in ng_conn_type_from_name. */
static const uint8_t conn_type_by_name[NG_CONN_TYPES] = {
  50, 170, 56, 136, 33, 9, 175, 86, 151, 64, 1, 80, 74, 10, 160, 32, 61, 51, 63, 142, 121, 16,
  108, 84, 88, 105, 104, 75, 157, 71, 146, 28, 103, 59, 102, 44, 70, 83, 25, 60, 174, 165, 171,
  167, 158, 26, 11, 173, 31, 163, 21, 45, 129, 73, 85, 134, 12, 34, 17, 106, 139, 20, 7, 137, 39,
  69, 162, 91, 145, 47, 49, 132, 37, 141, 94, 62, 143, 164, 107, 99, 97, 131, 5, 2, 3, 123, 68,
  79, 166, 155, 24, 116, 54, 92, 46, 124, 109, 93, 52, 128, 130, 30, 95, 38, 98, 4, 150, 115, 29,
  48, 76, 66, 149, 127, 65, 117, 55, 57, 35, 42, 96, 43, 147, 78, 19, 18, 22, 27, 148, 125, 72,
  120, 159, 15, 81, 153, 119, 140, 118, 135, 53, 144, 110, 41, 154, 8, 82, 40, 172, 126, 36, 168,
  100, 87, 77, 156, 101, 122, 152, 138, 0, 114, 13, 58, 161, 23, 6, 133, 14, 113, 112, 89, 90,
  169, 111, 67,
};
/* clang-format on */
static const char *const conn_category_names[NG_CONN_CATEGORIES] = {
    "Semantic",   "Causal",     "Temporal",  "Spatial", "Logical", "Associative",
    "Structural", "Functional", "Emotional", "Rule",    "Dynamic"};

/* Mutability class of each category: ontological categories are Immutable. */
static const uint8_t conn_category_mutability[NG_CONN_CATEGORIES] = {
    NG_IMMUTABLE, NG_LEARNABLE, NG_LEARNABLE, NG_IMMUTABLE, NG_IMMUTABLE, NG_LEARNABLE,
    NG_IMMUTABLE, NG_LEARNABLE, NG_LEARNABLE, NG_IMMUTABLE, NG_LEARNABLE};

static const char *const mutability_names[] = {"Immutable", "Learnable", "Hypothesis"};

const char *ng_conn_type_name(unsigned type) {
  return type < NG_CONN_TYPES ? conn_type_names[type] : NULL;
}

static int compare_type_name(const void *key, const void *elem) {
  return strcmp((const char *)key, conn_type_names[*(const uint8_t *)elem]);
}

/* needs: name may be NULL. guarantees: the type for the exact name, else -1,
 * in O(log n) string compares (this sits on the Lua binding's hot path). */
int ng_conn_type_from_name(const char *name) {
  if (!name) return -1;
  const uint8_t *hit = bsearch(name, conn_type_by_name, NG_CONN_TYPES, sizeof conn_type_by_name[0],
                               compare_type_name);
  return hit ? (int)*hit : -1;
}

int ng_conn_type_category(unsigned type) {
  return type < NG_CONN_TYPES ? (int)(type >> 4) : -1;
}

const char *ng_conn_category_name(unsigned category) {
  return category < NG_CONN_CATEGORIES ? conn_category_names[category] : NULL;
}

ng_mutability ng_conn_type_mutability(unsigned type) {
  if (type >= NG_CONN_TYPES) return NG_LEARNABLE;
  return (ng_mutability)conn_category_mutability[type >> 4];
}

const char *ng_mutability_name(unsigned m) {
  return m <= NG_HYPOTHESIS ? mutability_names[m] : NULL;
}

/* ---- connections -------------------------------------------------------- */

void ng_connection_init(ng_connection *c) {
  if (!c) return;
  memset(c, 0, sizeof *c);
  c->connection_type = NG_CONN_ASSOCIATED_WITH;
  c->rigidity = 128;
  c->preferred_distance = 1.0f;
  c->mutability = NG_LEARNABLE;
  c->confidence = 128;
  c->learning_rate = 32;
  c->decay_rate = 16;
}

ng_status ng_connection_set_type(ng_connection *c, unsigned type) {
  if (!c || type >= NG_CONN_TYPES) return NG_EINVAL;
  c->connection_type = (uint8_t)type;
  c->mutability = (uint8_t)ng_conn_type_mutability(type);
  /* Ontological facts are certain; switching back to a learnable type does
   * not restore the old confidence. */
  if (c->mutability == NG_IMMUTABLE) c->confidence = 255;
  return NG_OK;
}

void ng_connection_activate(ng_connection *c, uint32_t now) {
  if (!c) return;
  if (c->activation_count != UINT32_MAX) c->activation_count++;
  c->last_activation = now;
  c->flags |= NG_CONN_ACTIVE;
  /* Only exactly Learnable links stiffen; hypotheses must earn a promotion. */
  if (c->mutability == NG_LEARNABLE) {
    c->flags |= NG_CONN_REINFORCED;
    if (c->rigidity != UINT8_MAX) c->rigidity++;
  }
}

/* needs: c non-NULL (NULL ignored). guarantees: f32 arithmetic exactly as the
 * reference (c' = min(c + lr, 1) or max(c - lr/2, 0), truncated back to a byte),
 * so results are bit-identical with the original. */
void ng_connection_update_confidence(ng_connection *c, bool success, uint32_t now) {
  if (!c || c->mutability == NG_IMMUTABLE) return;
  float delta = (float)c->learning_rate / 255.0f;
  float conf = (float)c->confidence / 255.0f;
  if (success) {
    conf += delta;
    if (conf > 1.0f) conf = 1.0f;
    if (c->evidence_count != UINT16_MAX) c->evidence_count++;
  } else {
    conf -= delta / 2.0f;
    if (conf < 0.0f) conf = 0.0f;
  }
  c->confidence = u8_trunc(conf * 255.0f);
  c->last_update = now;
  c->flags |= NG_CONN_MODIFIED;
}

/* guarantees: decays only Hypothesis links idle for more than an hour.
 * last_update is deliberately not refreshed (the original's rule), so every later
 * call decays again; a clock that went backwards never decays. */
bool ng_connection_apply_decay(ng_connection *c, uint32_t now) {
  if (!c || c->mutability != NG_HYPOTHESIS) return false;
  if (now <= c->last_update || now - c->last_update <= 3600u) return false;
  float conf = (float)c->confidence / 255.0f;
  conf *= 1.0f - (float)c->decay_rate / 255.0f;
  c->confidence = u8_trunc(conf * 255.0f);
  c->flags |= NG_CONN_DECAYING;
  if (c->confidence < 25) c->flags &= (uint8_t)~NG_CONN_ACTIVE;
  return true;
}

float ng_connection_force(const ng_connection *c, float distance) {
  if (!c) return 0.0f;
  float k = c->mutability != NG_IMMUTABLE ? (float)c->confidence / 255.0f : 1.0f;
  return (c->preferred_distance - distance) * ((float)c->rigidity / 255.0f) * c->pull_strength * k;
}

/* ---- record rules: one home for the core API, the snapshot loader and bindings ---- */

ng_status ngi_reject(ng_status status, char *why, size_t why_size, const char *fmt, ...) {
  if (why && why_size > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_size, fmt, ap);
    va_end(ap);
  }
  return status;
}

#define REJECT(...) return ngi_reject(NG_EINVAL, why, why_size, __VA_ARGS__)

/* needs: u the unit of `space`; why may be NULL. guarantees: NG_OK when v
 * is finite and encodes inside -32768..32767 (truncation toward zero, so
 * 327.679 fits L1); the reason starts "coordinate of <space name>" (a
 * binding may put the axis's name in place of "coordinate"). */
ng_status ngi_coord_check(const ngi_unit *u, int space, double v, char *why, size_t why_size) {
  if (why && why_size > 0) why[0] = '\0';
  int32_t raw;
  if (!isfinite(v))
    REJECT("coordinate of %s must be a finite number, got %g", space_names[space], v);
  if (ngi_unit_encode(u, v, -32768, 32767, &raw) != NGI_ENC_OK)
    REJECT("coordinate of %s must be within %.10g..%.10g, got %.10g", space_names[space],
           ngi_unit_decode(u, -32768), ngi_unit_decode(u, 32767), v);
  return NG_OK;
}

ng_status ng_coord_check(int space, double v, char *why, size_t why_size) {
  if (why && why_size > 0) why[0] = '\0';
  if (!space_ok(space)) REJECT("space must be 0..%d, got %d", NG_SPACES - 1, space);
  return ngi_coord_check(&base_units[space], space, v, why, why_size);
}

/* needs: t non-NULL; cdna and why may be NULL. guarantees: checks the fields
 * selected (NG_TF_WEIGHT, NG_TF_FIELD_RADIUS, NG_TF_FIELD_STRENGTH; the others
 * hold any value) in that order and reports the first failure. */
ng_status ng_token_validate(const ng_token *t, uint32_t fields, const ng_cdna *cdna, char *why,
                            size_t why_size) {
  if (why && why_size > 0) why[0] = '\0';
  if (!t) REJECT("token is NULL");
  int strict = cdna && (cdna->flags & NG_CDNA_STRICT_MODE) != 0;
  if (fields & NG_TF_WEIGHT) {
    float w = t->weight;
    if (!ngi_finite(w) || w < 0.0f || w > 100.0f)
      REJECT("weight must be within 0..100, got %g", (double)w);
    if (strict && (w < cdna->min_token_weight || w > cdna->max_token_weight))
      REJECT("weight must be within the CDNA limits %g..%g (strict mode), got %g",
             (double)cdna->min_token_weight, (double)cdna->max_token_weight, (double)w);
  }
  if (strict && (fields & NG_TF_FIELD_RADIUS)) {
    unsigned r = t->field_radius;
    if (r < cdna->min_field_radius || r > cdna->max_field_radius)
      REJECT("field_radius must be within the CDNA limits %g..%g (strict mode), got %g",
             cdna->min_field_radius / 100.0, cdna->max_field_radius / 100.0, r / 100.0);
  }
  if (strict && (fields & NG_TF_FIELD_STRENGTH)) {
    unsigned s = t->field_strength;
    if (s < cdna->min_field_strength || s > cdna->max_field_strength)
      REJECT("field_strength must be within the CDNA limits %g..%g (strict mode), got %g",
             cdna->min_field_strength / 255.0, cdna->max_field_strength / 255.0, s / 255.0);
  }
  return NG_OK;
}

/* needs: c non-NULL; cdna and why may be NULL. guarantees: checks the fields
 * selected (NG_CF_TYPE, NG_CF_MUTABILITY, NG_CF_PULL_STRENGTH,
 * NG_CF_PREFERRED_DISTANCE, NG_CF_RIGIDITY; the others hold any value) in
 * that order and reports the first failure. With a cdna, the type's category
 * must be on in its allowed_connection_types, and with its STRICT_MODE the
 * weight and rigidity limits apply. */
ng_status ng_connection_validate(const ng_connection *c, uint32_t fields, const ng_cdna *cdna,
                                 char *why, size_t why_size) {
  if (why && why_size > 0) why[0] = '\0';
  if (!c) REJECT("connection is NULL");
  int strict = cdna && (cdna->flags & NG_CDNA_STRICT_MODE) != 0;
  if (fields & NG_CF_TYPE) {
    unsigned type = c->connection_type, cat = type >> 4;
    if (type >= NG_CONN_TYPES)
      REJECT("unknown connection type 0x%02X (connection_type must be within 0x00..0x%02X)", type,
             NG_CONN_TYPES - 1u);
    if (cdna && !((cdna->allowed_connection_types >> cat) & 1u))
      REJECT("connection_type 0x%02X (%s) is not allowed: category %u (%s) is off in the CDNA's "
             "allowed_connection_types",
             type, ng_conn_type_name(type), cat, ng_conn_category_name(cat));
  }
  if ((fields & NG_CF_MUTABILITY) && c->mutability > NG_HYPOTHESIS)
    REJECT("mutability must be 0..2, got %u", (unsigned)c->mutability);
  if (fields & NG_CF_PULL_STRENGTH) {
    float p = c->pull_strength;
    if (!ngi_finite(p) || fabsf(p) > 10.0f)
      REJECT("pull_strength must be within -10..10, got %g", (double)p);
    if (strict &&
        (fabsf(p) < cdna->min_connection_weight || fabsf(p) > cdna->max_connection_weight))
      REJECT("|pull_strength| must be within the CDNA connection weight limits %g..%g (strict "
             "mode), got %g",
             (double)cdna->min_connection_weight, (double)cdna->max_connection_weight, (double)p);
  }
  if (fields & NG_CF_PREFERRED_DISTANCE) {
    float d = c->preferred_distance;
    if (!ngi_finite(d) || d < 0.01f || d > 100.0f)
      REJECT("preferred_distance must be within 0.01..100, got %g", (double)d);
  }
  if ((fields & NG_CF_RIGIDITY) && strict) {
    float r = (float)c->rigidity / 255.0f;
    if (r < cdna->min_rigidity || r > cdna->max_rigidity)
      REJECT("rigidity %u (%g) must be within the CDNA rigidity limits %g..%g (strict mode)",
             (unsigned)c->rigidity, (double)r, (double)cdna->min_rigidity,
             (double)cdna->max_rigidity);
  }
  return NG_OK;
}
#undef REJECT
