/**
 * @file neurograph.h
 * @brief neurograph: an embeddable spatial-semantic store (the public C API).
 *
 * This is the only header an embedder needs for the core. The core has no
 * global mutable state, never aborts or exits on caller input, and reports
 * every failure (allocation failures included) as an ::ng_status with the
 * store left exactly as it was.
 *
 * Conventions
 * - Every fallible call returns ::ng_status (NG_OK == 0). ng_strerror() names
 *   the status; ng_last_error() gives the detail of the calling thread's last
 *   failed call on a runtime (which argument, which limit).
 * - Records (::ng_token, ::ng_connection, ::ng_cdna) are plain structs whose
 *   bytes are the on-disk image (little-endian). They are always copied in and
 *   out: the API never hands out a pointer into the store.
 * - Coordinate spaces are numbered 0..7 in C (NG_L1 .. NG_L8); the Lua binding
 *   numbers them 1..8. A token is in the spaces where it has been placed
 *   (ng_token_create's places, ng_token_place, a coordinate update) and in no
 *   other: a query in a space sees only the tokens placed there.
 * - Coordinates are stored as int16 fixed point. A space's unit is its
 *   dimension scale (the CDNA's dimension_scales[space], 1.0 by default) over
 *   its fixed-point scale (ng_space_scale): L1 at 1.0 holds +-327.67 m in 1 cm
 *   steps, at 10 +-3,276.7 m in 10 cm steps. Every call that takes or gives a
 *   decoded coordinate (positions, queries, distances, bounds) works in these
 *   units; records hold the raw integers. A whole number of units reads back
 *   exactly as written; anything else is truncated toward zero.
 * - Token and connection ids are ::ng_id, 64-bit integers below 2^53 (exact
 *   in a double): a slot in the low bits (a token's 24-bit slot is the
 *   record's local-id field; a connection's slot has 32 bits) and the slot's
 *   generation above it. Deleted records' slots are reused, with a larger
 *   generation, so an id never names two records: an id whose generation is
 *   not its slot's current one is simply not found (NG_ENOTFOUND), and 0, or
 *   an id >= 2^53, is a caller's mistake where an id is required (NG_EINVAL).
 *   Ids are issued in ascending order (reuse comes in epochs, see
 *   ng_token_create), so ascending id order is creation order; a runtime that
 *   never deletes issues 1, 2, 3, ... The order is a pure function of the
 *   calls made, and snapshots keep it.
 * - Zero-initialised option structs mean "defaults".
 * - Pointer arguments, one rule everywhere: a pointer documented "(may be
 *   NULL)" is optional, and NULL there means "not wanted" (the call still does
 *   its work and reports nothing there). The optional ones are the by-products
 *   of a call: the new id of a create (out_id), what a delete or clear removed
 *   (removed_*), how many of a batch were found (found), the record after a
 *   learn (out), validation's reason (why). Every other pointer is required:
 *   NULL is NG_EINVAL and nothing is done (calls on a runtime name the
 *   argument in ng_last_error). An array with a count (ids, cap/limit/n) may be NULL when its count
 *   is 0. Functions returning no status (record helpers, lookups) ignore a
 *   NULL record and return 0 / NULL.
 *
 * Threads: every function taking an ::ng_runtime is safe to call from any
 * thread. Readers run in parallel; writers are serialised. Callbacks given to
 * the *_each functions run under the runtime's read lock: they may call any
 * read function of the same runtime, and a write call from inside them fails
 * with NG_EBUSY instead of deadlocking. Callbacks may nest over any number of
 * runtimes (an each inside an each of another runtime, ...): a re-read never
 * queues behind a waiting writer, and only the runtimes the thread holds refuse
 * writes. Past 16 runtimes nested at once, the thread's lock bookkeeping grows
 * with malloc (freed when the nest ends), so an *_each may then fail with
 * NG_ENOMEM.
 */
#ifndef NEUROGRAPH_H
#define NEUROGRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NG_VERSION_MAJOR 0
#define NG_VERSION_MINOR 4
#define NG_VERSION_PATCH 0
#define NG_VERSION_STRING "0.4.0"

#if defined(_WIN32) && defined(NG_SHARED_BUILD)
#define NG_API __declspec(dllexport)
#elif defined(__GNUC__)
#define NG_API __attribute__((visibility("default")))
#else
#define NG_API
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "neurograph records are little-endian images; big-endian hosts are not supported"
#endif

/* ------------------------------------------------------------------------ */
/** @name Status codes */
/** @{ */

/** Result of every fallible call. NG_OK is 0; everything else is an error. */
typedef enum ng_status {
  NG_OK = 0,
  NG_ENOTFOUND, /**< no record with that id */
  NG_EINVAL,    /**< a caller's mistake: bad argument, NaN, out of range */
  NG_EEXIST,    /**< the record already exists (duplicate connection) */
  NG_ELIMIT,    /**< a limit was reached (every slot in use, degree, CDNA limit) */
  NG_ENOMEM,    /**< the allocator refused; nothing was changed */
  NG_EIO,       /**< an operating-system I/O call failed */
  NG_ECORRUPT,  /**< a file is corrupt, truncated or hostile */
  NG_EVERSION,  /**< a file was written by a newer, incompatible format */
  NG_EBUSY      /**< a write from inside an iteration callback, or a second ng_txn_begin */
} ng_status;

/** A short, static, English description of a status ("not found", ...). */
NG_API const char *ng_strerror(ng_status status);

/** @} */
/* ------------------------------------------------------------------------ */
/** @name Coordinate spaces */
/** @{ */

enum {
  NG_L1 = 0, /**< physical (m), scale 100 */
  NG_L2,     /**< sensory, scale 10000 */
  NG_L3,     /**< motor (m/s), scale 1000 */
  NG_L4,     /**< emotional (VAD), scale 10000 */
  NG_L5,     /**< cognitive, scale 10000 */
  NG_L6,     /**< social, scale 10000 */
  NG_L7,     /**< temporal (s), scale 100 */
  NG_L8,     /**< abstract, scale 10000 */
  NG_SPACES  /**< number of spaces: 8 */
};

/** Fixed-point scale of a space (100, 10000, 1000, ...): raw units per decoded
 *  unit at dimension scale 1.0. 0 for a bad space. */
NG_API float ng_space_scale(int space);
/** "L1".."L8" for 0..7; NULL for a bad space. */
NG_API const char *ng_space_name(int space);
/** "physical", "sensory", ... for 0..7; NULL for a bad space. */
NG_API const char *ng_space_alias(int space);
/** Space index 0..7 for "L1".."L8" or an alias ("physical", ...); -1 if unknown. */
NG_API int ng_space_from_name(const char *name);

/** @} */
/* ------------------------------------------------------------------------ */
/** @name Tokens */
/** @{ */

/** Token flag bits (bits 0-7 system, 8-11 entity type, 12-15 user). */
enum {
  NG_TOKEN_ACTIVE = 0x0001,
  NG_TOKEN_PERSISTENT = 0x0002,
  NG_TOKEN_MUTABLE = 0x0004,
  NG_TOKEN_SYNCHRONIZED = 0x0008,
  NG_TOKEN_COMPRESSED = 0x0010,
  NG_TOKEN_ENCRYPTED = 0x0020,
  NG_TOKEN_DIRTY = 0x0040,
  NG_TOKEN_LOCKED = 0x0080,
  NG_TOKEN_ENTITY_MASK = 0x0F00,
  NG_TOKEN_USER_1 = 0x1000,
  NG_TOKEN_USER_2 = 0x2000,
  NG_TOKEN_USER_3 = 0x4000,
  NG_TOKEN_USER_4 = 0x8000
};

/** Entity types (stored in flag bits 8-11; these are the unshifted values). */
enum {
  NG_ENTITY_UNDEFINED = 0,
  NG_ENTITY_OBJECT,
  NG_ENTITY_EVENT,
  NG_ENTITY_STATE,
  NG_ENTITY_PROCESS,
  NG_ENTITY_CONCEPT,
  NG_ENTITY_RELATION,
  NG_ENTITY_PATTERN,
  NG_ENTITY_RULE,
  NG_ENTITY_GOAL,
  NG_ENTITY_MEMORY,
  NG_ENTITY_SENSOR,
  NG_ENTITY_ACTUATOR,
  NG_ENTITY_CONTROLLER,
  NG_ENTITY_BUFFER,
  NG_ENTITY_RESERVED,
  NG_ENTITY_COUNT /**< 16 */
};

/** "Undefined", "Object", ... for 0..15; NULL otherwise. */
NG_API const char *ng_entity_name(unsigned entity);
/** Entity 0..15 for its name (exact, case-sensitive); -1 if unknown. */
NG_API int ng_entity_from_name(const char *name);

/** A token or connection id: generation << slot bits | slot, below 2^53. */
typedef uint64_t ng_id;
/** The largest id of either kind (2^53 - 1): every id is exact in a double. */
#define NG_ID_MAX ((ng_id)0x1FFFFFFFFFFFFFull)
/** Token slots are 1 .. NG_TOKEN_SLOT_MAX (the record's 24-bit local-id
 *  field), which is also the most tokens alive at once. */
#define NG_TOKEN_SLOT_MAX 0x00FFFFFFu
#define NG_TOKEN_SLOT_BITS 24
/** The slot (the record's local id) and the generation of a token id. */
#define NG_TOKEN_SLOT(id) ((uint32_t)((ng_id)(id)&NG_TOKEN_SLOT_MAX))
#define NG_TOKEN_GEN(id) ((ng_id)(id) >> NG_TOKEN_SLOT_BITS)

/**
 * A token: 64 bytes, packed, little-endian, byte-exact with the original
 * NeuroGraph Token. `weight` sits unaligned at offset 54.
 *
 * `id` is the composite id: bits 0-23 the token's slot (the low 24 bits of
 * its ::ng_id; the store keeps the generation beside the record), bits 24-27
 * a copy of the entity type (the store keeps it equal to the flags' entity
 * type), bits 28-31 a domain (0..15, the caller's).
 */
#if defined(__GNUC__)
#define NG_PACKED __attribute__((packed))
#else
#define NG_PACKED
#endif
typedef struct NG_PACKED ng_token {
  int16_t coords[NG_SPACES][3]; /**< raw fixed point, [space][x|y|z]; see ng_coord_encode */
  uint32_t id;                  /**< composite id, see above */
  uint16_t flags;               /**< NG_TOKEN_* bits and the entity type */
  float weight;                 /**< 0..100, finite */
  uint8_t field_radius;         /**< value/100: 0.00 .. 2.55 */
  uint8_t field_strength;       /**< value/255: 0 .. 1 */
  uint32_t timestamp;           /**< Unix seconds at creation */
} ng_token;

/** Fill `t` with the defaults of a new token: every coordinate 0, flags
 *  ACTIVE, weight 0, field radius and strength 0, id 0, timestamp 0 (which
 *  ng_token_create replaces with the runtime's clock). */
NG_API void ng_token_init(ng_token *t);

/** The raw codec, in the original's units (dimension scale 1.0; a runtime's
 *  scaled units: ng_coords_encode). v * scale truncated toward zero, except
 *  that a whole number of steps (k / scale) encodes as k: the original
 *  multiplied in single precision and stored about 7% of those one step low
 *  (0.53 in L1 became 52, read back 0.52); see docs/format.md. Keeps the
 *  original's clamping: a value beyond the range saturates to -32768 or
 *  32767, where the store's calls refuse it (NG_EINVAL). NaN encodes as 0, a
 *  bad space as 0. Never undefined behaviour. */
NG_API int16_t ng_coord_encode(int space, float v);
/** Decode one raw coordinate in the original's units: raw / scale, as a
 *  float (the original's division). A bad space decodes as 0. */
NG_API float ng_coord_decode(int space, int16_t raw);
/** ng_coord_encode of (x, y, z) into `t`'s coordinates of `space`. NG_EINVAL for a bad space. */
NG_API ng_status ng_token_set_coords(ng_token *t, int space, float x, float y, float z);
/** ng_coord_decode of `t`'s coordinates of `space` into xyz. NG_EINVAL for a bad space. */
NG_API ng_status ng_token_get_coords(const ng_token *t, int space, float xyz[3]);
/** The u8 codec of the fields stored as value * steps (field radius: 100,
 *  field strength and the connection fractions: 255): truncated toward zero,
 *  a whole number of steps (k / steps) encoded as k, clamped to 0..255, NaN
 *  0. steps 0 or above 65535 give 0. */
NG_API uint8_t ng_u8_encode(double v, unsigned steps);

/** field_radius = ng_u8_encode(r, 100): 1.05 stores 105 (the original: 104). */
NG_API void ng_token_set_field_radius(ng_token *t, float r);
/** field_radius / 100: 0.00 .. 2.55. A NULL t reads as 0. */
NG_API float ng_token_get_field_radius(const ng_token *t);
/** field_strength = ng_u8_encode(s, 255). */
NG_API void ng_token_set_field_strength(ng_token *t, float s);
/** field_strength / 255: 0 .. 1. A NULL t reads as 0. */
NG_API float ng_token_get_field_strength(const ng_token *t);
/** Replace flag bits 8-11 with `entity` (0..15; higher bits ignored). */
NG_API void ng_token_set_entity(ng_token *t, unsigned entity);
/** The entity type in flag bits 8-11 (0..15). A NULL t reads as 0. */
NG_API unsigned ng_token_get_entity(const ng_token *t);

/** The record's 32-bit id field: (domain & 0xF) << 28 | (entity & 0xF) << 24 |
 *  (local & 0xFFFFFF), where local is the token's slot (NG_TOKEN_SLOT of its
 *  ::ng_id; the generation is kept beside the record, not in it). */
NG_API uint32_t ng_make_id(uint32_t local, unsigned entity, unsigned domain);
#define NG_ID_LOCAL(id) ((uint32_t)(id)&0x00FFFFFFu)
#define NG_ID_ENTITY(id) (((uint32_t)(id) >> 24) & 0xFu)
#define NG_ID_DOMAIN(id) (((uint32_t)(id) >> 28) & 0xFu)

/** Field selectors for ng_token_update: which fields of the given record to
 *  write. Coordinates are selected per space with NG_TF_COORDS(space), which
 *  also places the token in that space; NG_TF_UNPLACE(space) takes it out of
 *  the space (its raw coordinates there become 0). NG_TF_ALL writes every
 *  field and places the token in all eight spaces. */
enum {
  NG_TF_COORDS_ALL = 0x00FF,
  NG_TF_WEIGHT = 0x0100,
  NG_TF_FLAGS = 0x0200, /**< all 16 flag bits, entity type included */
  NG_TF_FIELD_RADIUS = 0x0400,
  NG_TF_FIELD_STRENGTH = 0x0800,
  NG_TF_TIMESTAMP = 0x1000,
  NG_TF_DOMAIN = 0x2000, /**< id bits 28-31 */
  NG_TF_ENTITY = 0x4000, /**< flag bits 8-11 only (and the id's entity copy); the other flag
                              bits stay, so threads setting the entity and other flags of one
                              token do not undo each other. NG_TF_FLAGS includes it. */
  NG_TF_ALL = 0x7FFF
};
#define NG_TF_COORDS(space) (1u << (space))
#define NG_TF_UNPLACE(space) (1u << (16 + (space)))
#define NG_TF_UNPLACE_ALL 0x00FF0000u

/** @} */
/* ------------------------------------------------------------------------ */
/** @name Connections */
/** @{ */

/** Number of defined connection types (0x00 .. 0xAF): 11 categories x 16. */
#define NG_CONN_TYPES 176
#define NG_CONN_CATEGORIES 11
/** The default type of a new connection: AssociatedWith. */
#define NG_CONN_ASSOCIATED_WITH 0x50

/** Connection flag bits. */
enum {
  NG_CONN_ACTIVE = 0x01,
  NG_CONN_PERSISTENT = 0x02,
  NG_CONN_BIDIRECTIONAL = 0x04,
  NG_CONN_INHIBITORY = 0x08,
  NG_CONN_MODIFIED = 0x10,
  NG_CONN_REINFORCED = 0x20,
  NG_CONN_DECAYING = 0x40,
  NG_CONN_USER_FLAG = 0x80
};

/** Mutability classes. */
typedef enum ng_mutability { NG_IMMUTABLE = 0, NG_LEARNABLE = 1, NG_HYPOTHESIS = 2 } ng_mutability;

/** Connection type name ("Synonym", "Cause", ...) for 0..175; NULL otherwise. */
NG_API const char *ng_conn_type_name(unsigned type);
/** Type 0..175 for its name (exact, case-sensitive); -1 if unknown. */
NG_API int ng_conn_type_from_name(const char *name);
/** Category 0..10 of a type (type >> 4); -1 for an undefined type. */
NG_API int ng_conn_type_category(unsigned type);
/** "Semantic", "Causal", ... for 0..10; NULL otherwise. */
NG_API const char *ng_conn_category_name(unsigned category);
/** Mutability class of a type (Immutable or Learnable); Learnable for undefined types. */
NG_API ng_mutability ng_conn_type_mutability(unsigned type);
/** "Immutable", "Learnable", "Hypothesis"; NULL otherwise. */
NG_API const char *ng_mutability_name(unsigned m);

/**
 * A connection: 64 bytes, little-endian, byte-exact with the original
 * ConnectionV3. Unlike the original, direction is kept: token_a_id is the
 * source ("from"), token_b_id the target ("to"); NG_CONN_BIDIRECTIONAL marks
 * links that act both ways. The record has no id field: the store keys it.
 * The endpoint fields hold the endpoints' slots (NG_TOKEN_SLOT of their ids,
 * as in the original's 32-bit fields); the full ::ng_id of the endpoints are
 * given to ng_connection_create and read back with ng_connection_ends.
 */
typedef struct ng_connection {
  uint32_t token_a_id;              /**< from: its slot (NG_TOKEN_SLOT) */
  uint32_t token_b_id;              /**< to: its slot (NG_TOKEN_SLOT) */
  uint8_t connection_type;          /**< 0x00..0xAF */
  uint8_t rigidity;                 /**< u8 fraction */
  uint8_t active_levels;            /**< bit i: acts in space i */
  uint8_t flags;                    /**< NG_CONN_* */
  uint32_t activation_count;        /**< saturating */
  float pull_strength;              /**< |v| <= 10 */
  float preferred_distance;         /**< 0.01 .. 100 */
  uint32_t created_at;              /**< Unix s */
  uint32_t last_activation;         /**< Unix s, 0 = never */
  uint8_t mutability;               /**< ng_mutability */
  uint8_t confidence;               /**< u8 fraction */
  uint16_t evidence_count;          /**< saturating */
  uint32_t last_update;             /**< Unix s */
  uint8_t learning_rate;            /**< u8 fraction */
  uint8_t decay_rate;               /**< u8 fraction */
  uint16_t padding1;                /**< always 0 */
  uint32_t source_id;               /**< 0 = manual */
  int16_t target_vector[NG_SPACES]; /**< raw X of each space of a target token */
} ng_connection;

/** Fill `c` with the defaults of a new link (endpoints 0, the caller sets them): type
 *  AssociatedWith, rigidity 128, flags 0, pull 0, preferred distance 1,
 *  Learnable, confidence 128, learning rate 32, decay rate 16; created_at and
 *  last_update 0 (ng_connection_create replaces 0 with the runtime's clock). */
NG_API void ng_connection_init(ng_connection *c);
/** Set the type and derive the mutability from it; an Immutable type forces
 *  confidence 255. NG_EINVAL (record unchanged) for a type > 0xAF. */
NG_API ng_status ng_connection_set_type(ng_connection *c, unsigned type);

/** The learning rules, applied to a record in place. `now` is
 *  Unix seconds. activate: count+1, last_activation, ACTIVE; Learnable also
 *  REINFORCED and rigidity+1. */
NG_API void ng_connection_activate(ng_connection *c, uint32_t now);
/** No-op for Immutable; otherwise confidence +lr (success) or -lr/2 (failure),
 *  evidence+1 on success, last_update = now, MODIFIED. */
NG_API void ng_connection_update_confidence(ng_connection *c, bool success, uint32_t now);
/** Hypothesis only, when now - last_update > 3600: confidence *= 1 - decay,
 *  DECAYING, and ACTIVE cleared below 25. Returns true if it decayed. */
NG_API bool ng_connection_apply_decay(ng_connection *c, uint32_t now);
/** (preferred - d) * rigidity * pull * (confidence if modifiable else 1). */
NG_API float ng_connection_force(const ng_connection *c, float distance);

/** Field selectors for ng_connection_update. The endpoints never change.
 *  NG_CF_FLAGS writes all eight flag bits; NG_CF_FLAG_BITS(mask) writes only
 *  the bits in `mask` (from values->flags) and keeps the others, atomically:
 *  e.g. NG_CF_FLAG_BITS(NG_CONN_BIDIRECTIONAL) with values->flags 0 clears
 *  that bit alone, so concurrent writers of different bits lose nothing. */
enum {
  NG_CF_TYPE = 0x0001, /**< type only; mutability is not derived (use NG_CF_MUTABILITY) */
  NG_CF_RIGIDITY = 0x0002,
  NG_CF_ACTIVE_LEVELS = 0x0004,
  NG_CF_FLAGS = 0x0008,
  NG_CF_ACTIVATION_COUNT = 0x0010,
  NG_CF_PULL_STRENGTH = 0x0020,
  NG_CF_PREFERRED_DISTANCE = 0x0040,
  NG_CF_CREATED_AT = 0x0080,
  NG_CF_LAST_ACTIVATION = 0x0100,
  NG_CF_MUTABILITY = 0x0200,
  NG_CF_CONFIDENCE = 0x0400,
  NG_CF_EVIDENCE_COUNT = 0x0800,
  NG_CF_LAST_UPDATE = 0x1000,
  NG_CF_LEARNING_RATE = 0x2000,
  NG_CF_DECAY_RATE = 0x4000,
  NG_CF_SOURCE_ID = 0x8000,
  NG_CF_TARGET_VECTOR = 0x10000,
  NG_CF_ALL = 0x1FFFF
};
/** Selector writing only the flag bits in `mask` (0..255; bits 24-31 of the selector). */
#define NG_CF_FLAG_BITS(mask) (((uint32_t)(mask)&0xFFu) << 24)

/** Learning operations applied atomically by ng_connection_learn. */
typedef enum ng_learn_op {
  NG_LEARN_ACTIVATE = 1, /**< ng_connection_activate */
  NG_LEARN_SUCCESS,      /**< ng_connection_update_confidence(true) */
  NG_LEARN_FAILURE,      /**< ng_connection_update_confidence(false) */
  NG_LEARN_DECAY         /**< ng_connection_apply_decay */
} ng_learn_op;

/** Directions for ng_token_connections. */
typedef enum ng_direction {
  NG_OUT = 1, /**< connections whose from is the token */
  NG_IN = 2,  /**< connections whose to is the token */
  NG_BOTH = 3
} ng_direction;

/** @} */
/* ------------------------------------------------------------------------ */
/** @name CDNA: the 384-byte configuration block */
/** @{ */

#define NG_CDNA_MAGIC 0x434E4441u
#define NG_CDNA_VERSION_MAJOR 2
#define NG_CDNA_VERSION_MINOR 1

/** Profiles. */
enum {
  NG_PROFILE_DEFAULT = 0,
  NG_PROFILE_EXPLORER = 1,
  NG_PROFILE_ANALYST = 2,
  NG_PROFILE_CREATIVE = 3,
  NG_PROFILE_CUSTOM = 255
};
/** Profile-state bits. */
enum {
  NG_PSTATE_ACTIVE = 0x1,
  NG_PSTATE_QUARANTINE = 0x2,
  NG_PSTATE_VALIDATED = 0x4,
  NG_PSTATE_READONLY = 0x8
};
/** CDNA flag bits. */
enum {
  NG_CDNA_ENABLE_VALIDATION = 0x1,
  NG_CDNA_ENABLE_EVENTS = 0x2,
  NG_CDNA_ENABLE_MUTATION = 0x4,
  NG_CDNA_STRICT_MODE = 0x8,
  /** Count operations and time queries (ng_stats.writes, ng_stats.queries);
   *  off, the counters cost one untaken branch per query. */
  NG_CDNA_ENABLE_METRICS = 0x10
};

/** "Default", "Explorer", "Analyst", "Creative", "Custom"; NULL otherwise. */
NG_API const char *ng_profile_name(uint32_t profile);
/** Profile number for its name (exact, case-sensitive); -1 if unknown. */
NG_API int ng_profile_from_name(const char *name);

/**
 * The CDNA: 384 bytes, little-endian, byte-exact with the original.
 *
 * allowed_connection_types: bit c allows the connection types of category c
 * (0..10); bits 11-63 are ignored. dimension_scales[i] is the unit multiplier
 * of space i (see "Coordinates" at the top; 1.0 is the original's codec,
 * byte-exact), within 0.000001..1000000; bucket_sizes are the
 * nominal grid cell sizes per space, in decoded units, validated and reported
 * by ng_grid_info: the index itself sizes its cells from the data (about a
 * dozen points per cell, crowded cells subdivided), because fixed buckets
 * degenerate into a linear scan in the scale-10000 spaces.
 */
typedef struct ng_cdna {
  uint32_t magic;
  uint16_t version_major;
  uint16_t version_minor;
  uint64_t created_at;
  uint64_t modified_at;
  uint32_t profile_id;
  uint32_t profile_state;
  uint32_t flags;
  uint32_t reserved1;
  uint64_t checksum; /**< FNV-1a 64 over all bytes except 40..47 */
  uint8_t reserved2[16];
  uint8_t dimension_ids[NG_SPACES];
  uint8_t dimension_flags[NG_SPACES];
  float dimension_scales[NG_SPACES];
  float bucket_sizes[NG_SPACES];
  float field_strength_limits[NG_SPACES];
  uint8_t reserved3[16];
  uint64_t allowed_connection_types;
  uint32_t max_out_degree;
  uint32_t max_in_degree;
  uint32_t max_total_degree;
  float min_weight_threshold;
  float max_weight_threshold;
  uint8_t reserved4[36];
  float min_token_weight;
  float max_token_weight;
  uint16_t min_field_radius; /**< u8-encoded (value/100) */
  uint16_t max_field_radius;
  uint16_t min_field_strength; /**< u8-encoded (value/255) */
  uint16_t max_field_strength;
  uint8_t reserved5[16];
  float min_connection_weight;
  float max_connection_weight;
  float min_rigidity;
  float max_rigidity;
  float default_pull_strength;
  float decay_rate;
  uint8_t reserved6[40];
  float mutation_rate;
  float crossover_rate;
  float selection_pressure;
  uint32_t evolution_flags;
  float trace_sample_rate;
  uint8_t reserved7[12];
} ng_cdna;

/** Fill `c` with the defaults of `profile` (the base defaults plus the
 *  profile's preset: its degree limits, rates and flag bits), created_at = modified_at = now,
 * checksum computed. NG_EINVAL (c untouched) for an unknown profile. */
NG_API ng_status ng_cdna_init(ng_cdna *c, uint32_t profile, uint64_t now);
/** FNV-1a 64 over the 384 bytes except offsets 40..47. */
NG_API uint64_t ng_cdna_checksum(const ng_cdna *c);
/**
 * Check everything: magic, major version, checksum, modified_at >= created_at,
 * known profile, every float finite, dimension scales within 1e-6..1e6,
 * bucket sizes > 0, min <= max
 * pairs, rates within [0, 1], degree limits consistent. On failure returns
 * NG_EINVAL (NG_ECORRUPT for magic, version or checksum) and writes the first
 * failure as text into why (may be NULL; written if why_size > 0, always
 * NUL-terminated).
 */
NG_API ng_status ng_cdna_validate(const ng_cdna *c, char *why, size_t why_size);

/* ---- record rules ----------------------------------------------------------
 * The value rules every writer applies (ng_token_create/update, the
 * ng_connection_* writes, the snapshot loader, the Lua binding). Each returns
 * NG_OK or NG_EINVAL and writes the first failure, naming the field, into why
 * (may be NULL; written if why_size > 0, always NUL-terminated), e.g.
 * "weight must be within 0..100, got 250". They never touch a runtime. */

/**
 * Check the fields of `t` selected by `fields` (NG_TF_*; only NG_TF_WEIGHT,
 * NG_TF_FIELD_RADIUS and NG_TF_FIELD_STRENGTH have rules): weight finite within
 * 0..100. With a `cdna` (may be NULL: structural rules only) whose flags have
 * NG_CDNA_STRICT_MODE, also weight, field_radius and field_strength within its
 * min/max limits.
 */
NG_API ng_status ng_token_validate(const ng_token *t, uint32_t fields, const ng_cdna *cdna,
                                   char *why, size_t why_size);
/**
 * Check the fields of `c` selected by `fields` (NG_CF_*; only NG_CF_TYPE,
 * NG_CF_MUTABILITY, NG_CF_PULL_STRENGTH, NG_CF_PREFERRED_DISTANCE and
 * NG_CF_RIGIDITY have rules): connection_type below NG_CONN_TYPES, mutability
 * 0..2, pull_strength finite within -10..10, preferred_distance finite within
 * 0.01..100. With a `cdna` (may be NULL: structural rules only), the type's
 * category must be on in its allowed_connection_types; with its
 * NG_CDNA_STRICT_MODE also |pull_strength| within the connection weight limits
 * and rigidity / 255 within the rigidity limits.
 */
NG_API ng_status ng_connection_validate(const ng_connection *c, uint32_t fields,
                                        const ng_cdna *cdna, char *why, size_t why_size);
/**
 * Whether the decoded coordinate `v` is one `space` (0..7) stores exactly as
 * given: finite, and v * ng_space_scale(space) (in float, truncated toward
 * zero) within the int16 range -32768..32767. ng_coord_encode saturates
 * values that fail; writers that must not saturate check first. The reason
 * starts "coordinate of <space name>", e.g. "coordinate of L1 must be within
 * -327.68..327.67, got 400".
 */
NG_API ng_status ng_coord_check(int space, double v, char *why, size_t why_size);

/** @} */
/* ------------------------------------------------------------------------ */
/** @name Runtime */
/** @{ */

/** The store. Opaque, reference counted. */
typedef struct ng_runtime ng_runtime;

/**
 * Allocator with the signature of lua_Alloc, so a host can hand one function
 * to both Lua and neurograph: nsize == 0 frees ptr (returns NULL); otherwise
 * it returns a block of nsize bytes (ptr may be NULL, osize is then a hint),
 * or NULL on failure, leaving ptr untouched. Blocks must be aligned for any
 * type, as malloc's are (records are read as aligned 8-byte words).
 */
typedef void *(*ng_alloc_fn)(void *ud, void *ptr, size_t osize, size_t nsize);
/** Clock: Unix seconds. Used for timestamps; lets a host make replays exact. */
typedef uint64_t (*ng_clock_fn)(void *ud);
/**
 * Progress of a long operation, for a host that shows a progress bar. `what`
 * is "save", "load", "export" or "import" (a static string); `done` of
 * `total` units (bytes for save and load, tokens and connections for export
 * and import). Each operation calls it once with done == 0 when it starts
 * (an import once the JSON is parsed and the number of records known),
 * then rarely (every MiB, or every 4096 records) with done increasing, and
 * once with done == total when it has succeeded; a failed operation ends
 * without that last call. It may run under the runtime's read lock, or while
 * no runtime exists yet: it must not call the runtime (or any neurograph
 * function taking one). NULL costs nothing.
 */
typedef void (*ng_progress_fn)(void *ud, const char *what, uint64_t done, uint64_t total);

/** Runtime configuration. All zero = defaults. */
typedef struct ng_config {
  ng_alloc_fn alloc; /**< NULL: realloc/free */
  void *alloc_ud;
  ng_clock_fn clock; /**< NULL: time(NULL) */
  void *clock_ud;
  size_t initial_tokens;      /**< capacity hint (0: small) */
  size_t initial_connections; /**< capacity hint (0: small) */
  uint32_t profile;           /**< CDNA profile to start with (NG_PROFILE_*) */
  const ng_cdna *cdna;        /**< if set, the starting CDNA (validated; copied) */
  /** Dimension scales to start with, per space (0: keep the CDNA's, 1.0 by
   *  default), written into the starting CDNA's dimension_scales. */
  float scales[NG_SPACES];
  /** Progress of long operations (NULL: none). A runtime keeps it for its
   *  saves and exports; ng_snapshot_load and ng_import_json use the one in
   *  the cfg they are given (and the runtime they make keeps it). */
  ng_progress_fn progress;
  void *progress_ud;
} ng_config;

/** Create a runtime with a reference count of 1. `cfg` may be NULL. */
NG_API ng_status ng_runtime_new(const ng_config *cfg, ng_runtime **out);
/** Add a reference; returns rt. */
NG_API ng_runtime *ng_runtime_retain(ng_runtime *rt);
/** Drop a reference; the last one frees the runtime, first waiting for a
 *  background save of it still running (ng_snapshot_save_background). NULL
 *  is ignored. */
NG_API void ng_runtime_release(ng_runtime *rt);

/**
 * Detail of the calling thread's last failed call on `rt`, e.g.
 * "weight must be within 0..100, got 250". Empty string if none. With
 * rt == NULL: the calling thread's last failure on any runtime, including
 * calls that have no runtime yet (ng_runtime_new). The pointer stays valid
 * until this thread's next failing call.
 */
NG_API const char *ng_last_error(const ng_runtime *rt);
/**
 * ng_last_error() without the name of the function that failed: a message
 * reads "function: detail" and this is the detail, e.g. "degree limit
 * reached: token 5 has 64 outgoing connections (max_out_degree 64)", for a
 * caller that reports failures in its own terms (the Lua binding). Same
 * validity as ng_last_error().
 */
NG_API const char *ng_last_error_detail(const ng_runtime *rt);

/** Query kinds, as counted by the metrics. */
enum { NG_QUERY_RANGE, NG_QUERY_NEIGHBORS, NG_QUERY_NEAREST, NG_QUERY_BOX, NG_QUERY_KINDS };
/** "range", "neighbours", "nearest", "box" (the Prometheus label values); NULL otherwise. */
NG_API const char *ng_query_name(int kind);

/** Latency summary of one query kind (successful and failed calls that got
 *  past argument checks). Quantiles come from a log histogram with four
 *  buckets per power of two: each is the upper edge of its bucket, so within
 *  about 19% above the true value. All 0 when count is 0. */
typedef struct ng_query_stats {
  uint64_t count;
  double total_seconds, mean_seconds, p50_seconds, p99_seconds;
} ng_query_stats;

/** Memory and content figures. */
typedef struct ng_stats {
  size_t tokens;
  size_t connections;
  size_t bytes_in_use; /**< bytes currently allocated by this runtime */
  size_t bytes_peak;
  ng_id next_token_id;        /**< the id the next token create gets (0: none left) */
  ng_id next_connection_id;   /**< the same for connections */
  size_t token_slots_free;    /**< token slots freed and waiting for reuse */
  size_t token_slots_retired; /**< token slots never to be reused */
  size_t connection_slots_free;
  size_t connection_slots_retired;
  size_t placed[NG_SPACES]; /**< tokens placed in each space */
  /** Bytes held by each part of the store (capacity, not only what is in use;
   *  together less than bytes_in_use, which also counts the runtime itself
   *  and query buffers). */
  struct {
    size_t token_records;       /**< the 64-byte token records */
    size_t token_slot_maps;     /**< token id -> slot map and placement bytes */
    size_t space_index[NG_SPACES]; /**< each space's grid index */
    size_t connections;         /**< connection records, their id map and adjacency */
    size_t journal;             /**< an open transaction's undo log (0 outside one) */
  } memory;
  /** With NG_CDNA_ENABLE_METRICS set (since it was last set: turning it off
   *  keeps the figures, turning it on again continues them): */
  bool metrics;    /**< the flag is set now */
  uint64_t writes; /**< write-lock holds: each write call, each write inside a transaction */
  ng_query_stats queries[NG_QUERY_KINDS]; /**< per query kind (NG_QUERY_*) */
} ng_stats;
/** Fill *out with the runtime's current figures (one consistent snapshot,
 *  under the read lock). NG_EINVAL for a NULL rt or out. */
NG_API ng_status ng_runtime_stats(ng_runtime *rt, ng_stats *out);

/**
 * The figures of ng_runtime_stats in the Prometheus text exposition format
 * (0.0.4): metric names prefixed neurograph_, HELP and TYPE lines, labels
 * space="L1".."L8", component="..." and query="range" | "neighbours" |
 * "nearest" | "box" (a summary with quantiles 0.5 and 0.99). Writes at most
 * size bytes into buf (NUL-terminated when size > 0; buf may be NULL with
 * size 0) and returns the length of the whole text, as snprintf does: call
 * again with a larger buffer when the result is >= size. 0 for a NULL rt.
 */
NG_API size_t ng_metrics_format(ng_runtime *rt, char *buf, size_t size);

/** The runtime's clock (Unix seconds), as used for timestamps. */
NG_API uint64_t ng_runtime_now(ng_runtime *rt);

/** @} */
/* ------------------------------------------------------------------------ */
/** @name Transactions
 *
 * Many writes, all or nothing. A transaction belongs to the thread that
 * begins it and holds the runtime's write lock until it ends:
 * - that thread's write calls on the runtime run inside it (outside any
 *   iteration callback, where writes still fail with NG_EBUSY), its reads
 *   see its own writes;
 * - other threads' writes and reads (ng_token_get included) wait until it
 *   ends, so no reader ever sees part of a transaction; what they see
 *   afterwards is all of it (commit) or none of it (rollback);
 * - a rollback restores the store exactly: every record, id, placement, the
 *   CDNA, and the id allocators (the next create returns the id it would
 *   have had without the transaction); the grids answer the same queries;
 * - a commit costs nothing per write; a rollback costs about what the
 *   transaction wrote (every write logs what it overwrites);
 * - if a write inside it runs out of memory (NG_ENOMEM), the whole
 *   transaction is rolled back at once and stays open, failed: later
 *   writes fail with NG_ENOMEM and ng_txn_commit reports NG_ENOMEM (ending
 *   it, nothing committed);
 * - a transaction left open is not kept silently: the thread's next
 *   ng_txn_begin on the runtime fails with NG_EBUSY saying so, and the last
 *   ng_runtime_release by that thread rolls it back and records the fact
 *   for ng_last_error().
 * Savepoints nest inside a transaction: ng_txn_rollback_to undoes only the
 * writes made since the savepoint.
 */
/** @{ */

/** A savepoint inside a transaction (1, 2, ... by depth). */
typedef uint32_t ng_savepoint;

/** Begin a transaction on rt in the calling thread (waits for other
 *  writers). NG_EBUSY when this thread already has one open on rt or is
 *  inside an iteration callback of rt; NG_ENOMEM. */
NG_API ng_status ng_txn_begin(ng_runtime *rt);
/** Commit and end the calling thread's transaction. NG_EINVAL when it has
 *  none open on rt; NG_ENOMEM when the transaction had failed (rolled back,
 *  ended, nothing committed). */
NG_API ng_status ng_txn_commit(ng_runtime *rt);
/** Undo every write of the calling thread's transaction and end it.
 *  NG_EINVAL when it has none open on rt. */
NG_API ng_status ng_txn_rollback(ng_runtime *rt);
/** Take a savepoint in the calling thread's transaction; *out names it.
 *  NG_EINVAL (no transaction, out NULL), NG_ENOMEM. */
NG_API ng_status ng_txn_savepoint(ng_runtime *rt, ng_savepoint *out);
/** Undo the writes made since savepoint sp; sp and the savepoints taken
 *  after it end, the transaction goes on. NG_EINVAL when sp is not open. */
NG_API ng_status ng_txn_rollback_to(ng_runtime *rt, ng_savepoint sp);
/** End savepoint sp (and those taken after it), keeping its writes as part
 *  of the enclosing one. NG_EINVAL when sp is not open. */
NG_API ng_status ng_txn_release(ng_runtime *rt, ng_savepoint sp);
/** Whether the calling thread has a transaction open on rt. */
NG_API bool ng_txn_open(ng_runtime *rt);

/** @} */
/* ------------------------------------------------------------------------ */
/** @name Token store */
/** @{ */

/**
 * Store a new token, placed in the spaces of the mask `spaces` (bit s for
 * space s: NG_TF_COORDS(s) values, NG_TF_COORDS_ALL for all eight; 0 for a
 * token placed nowhere, stored, listed and connectable, found by no query)
 * at init's raw coordinates there (ng_coords_encode gives them from a
 * position); its coordinates in the other spaces are stored as 0. `init` may
 * be NULL (ng_token_init defaults). Every other field of `init` is honoured
 * except the local-id bits (assigned) and the entity copy in the id
 * (synchronised with the flags); timestamp 0 becomes now. Checks: spaces
 * within NG_TF_COORDS_ALL; weight finite and within 0..100; with STRICT_MODE
 * also the CDNA's token weight, field radius and field strength limits.
 * *out_id (may be NULL) gets the new id.
 * Fails with NG_EINVAL, NG_ELIMIT (NG_TOKEN_SLOT_MAX tokens alive, or every
 * slot live or retired), NG_ENOMEM.
 */
NG_API ng_status ng_token_create(ng_runtime *rt, const ng_token *init, unsigned spaces,
                                 ng_id *out_id);
/** A position in one space, in that space's units (its dimension scale applied). */
typedef struct ng_place {
  int space;     /**< 0..7 */
  double xyz[3]; /**< x, y, z */
} ng_place;
/**
 * ng_token_create placing the token at positions given in the spaces' units:
 * places[0 .. n_places) (may be NULL when n_places is 0), each space at most
 * once, encoded under the write lock (so a concurrent change of a dimension
 * scale cannot slip between the encoding and the store); init's coordinates
 * are ignored. A coordinate that does not fit its space is NG_EINVAL (the last
 * error names the axis, the space and the value) and nothing is created.
 */
NG_API ng_status ng_token_create_at(ng_runtime *rt, const ng_token *init, const ng_place *places,
                                    size_t n_places, ng_id *out_id);
/**
 * Place token `id` in `space` at xyz (the space's units), or move it there if
 * it is placed already: the same as an ng_token_update of NG_TF_COORDS(space)
 * with the encoded values. A coordinate that does not fit is NG_EINVAL (the
 * last error names the space, the axis and the value) and changes nothing.
 * NG_ENOTFOUND, NG_EINVAL, NG_ENOMEM.
 */
NG_API ng_status ng_token_place(ng_runtime *rt, ng_id id, int space, const double xyz[3]);
/** Take token `id` out of `space` (its raw coordinates there become 0); NG_OK
 *  and nothing changes if it is not placed there. NG_ENOTFOUND, NG_EINVAL. */
NG_API ng_status ng_token_unplace(ng_runtime *rt, ng_id id, int space);
/** Token `id`'s position in `space` (its units) into xyz. NG_ENOTFOUND if
 *  there is no such token or it is not placed in `space` (the last error
 *  says which); NG_EINVAL. */
NG_API ng_status ng_token_position(ng_runtime *rt, ng_id id, int space, double xyz[3]);
/** The spaces token `id` is placed in, as a bit mask (bit s: space s) into
 *  *spaces. NG_ENOTFOUND, NG_EINVAL. */
NG_API ng_status ng_token_spaces(ng_runtime *rt, ng_id id, unsigned *spaces);
/**
 * Encode n points, xyz[0 .. 3n) (x, y, z each; `space`'s units in rt), into
 * raw[0 .. 3n), for records given to ng_token_create / ng_token_update /
 * ng_token_update_batch, under one read lock; the rule of every store call:
 * a value that does not fit the space's range is NG_EINVAL (the last error
 * names the point when n > 1, the axis, the space and the value, e.g.
 * "point 3: y of L1 must be within -327.68..327.67, got 400") and raw is
 * untouched. Raw values are in the units of the moment: a record encoded
 * before a change of the space's dimension scale is read in the new units,
 * so change scales while no other thread encodes. n == 0 is NG_OK.
 */
NG_API ng_status ng_coords_encode(ng_runtime *rt, int space, const double *xyz, size_t n,
                                  int16_t *raw);
/** Decode n raw points, raw[0 .. 3n), of `space` into xyz[0 .. 3n) in rt's
 *  units (exactly as ng_token_position reads them). NG_EINVAL for a bad space
 *  or a NULL array with n > 0. */
NG_API ng_status ng_coords_decode(ng_runtime *rt, int space, const int16_t *raw, size_t n,
                                  double *xyz);
/**
 * Copy token `id` into *out. NG_ENOTFOUND if there is none (*out untouched).
 * Takes no lock while no thread is writing to the runtime: it reads
 * optimistically and checks the runtime's write sequence afterwards (reading
 * under the read lock instead when a write overlaps), so gets from many
 * threads do not contend, and the copy is always one consistent version.
 */
NG_API ng_status ng_token_get(ng_runtime *rt, ng_id id, ng_token *out);
/**
 * Copy many tokens at once: out[i] gets token ids[i], or all zero bytes
 * (local id 0) where there is no such token; *found (may be NULL) gets how
 * many were found. One read lock for the batch (one consistent point in
 * time), and the records ahead are loaded while earlier ones are copied, so
 * random ids over a large table cost far less than single gets: use it for
 * the hits of a query, or a frame's worth of lookups. `ids` and `out` (n
 * entries each) may be NULL only when n is 0. NG_EINVAL.
 */
NG_API ng_status ng_token_get_batch(ng_runtime *rt, const ng_id *ids, size_t n, ng_token *out,
                                    size_t *found);
/**
 * Write the fields of `values` selected by `fields` (NG_TF_*) into token `id`,
 * atomically, with the checks of ng_token_create. Coordinates are raw
 * (ng_coords_encode); writing a space's coordinates places the token there,
 * NG_TF_UNPLACE(space) takes it out (both for one space: NG_EINVAL). Moves in
 * the grid follow.
 * NG_ENOTFOUND, NG_EINVAL (including unknown field bits), NG_ENOMEM.
 */
NG_API ng_status ng_token_update(ng_runtime *rt, ng_id id, const ng_token *values, uint32_t fields);
/**
 * Update many tokens at once: the same as ng_token_update(rt, ids[i],
 * &values[i], fields) for i = 0 .. n-1 in order, so when an id appears more
 * than once the later entry wins, but under one write lock and all or
 * nothing: every entry is checked before any is written, and on any failure
 * the store is unchanged. Much faster than n single calls for large n (one
 * lock, overlapped cache misses): use it to move many tokens per frame.
 * `ids` and `values` (n entries each, borrowed) may be NULL only when n is 0;
 * n == 0 is NG_OK. The last error names the failing entry's index and id.
 * NG_ENOTFOUND, NG_EINVAL (including unknown field bits), NG_ENOMEM, NG_EBUSY.
 */
NG_API ng_status ng_token_update_batch(ng_runtime *rt, const ng_id *ids, const ng_token *values,
                                       size_t n, uint32_t fields);
/** Delete token `id` and every connection that starts or ends at it.
 *  *removed_connections (may be NULL) gets how many went. NG_ENOTFOUND. */
NG_API ng_status ng_token_delete(ng_runtime *rt, ng_id id, size_t *removed_connections);
/** Number of live tokens. */
NG_API size_t ng_token_count(ng_runtime *rt);
/**
 * Copy up to `limit` ids of live tokens, in ascending id order, skipping the
 * first `offset`, into ids[] (may be NULL when limit is 0); *n_out (required)
 * gets how many were written.
 */
NG_API ng_status ng_token_list(ng_runtime *rt, size_t offset, size_t limit, ng_id *ids,
                               size_t *n_out);
/** Delete every token and connection; their slots go back for reuse in
 *  ascending id order (new ids still grow: see the id rules above).
 *  *removed_tokens and *removed_connections (each may be NULL) get how many
 *  went. Never fails for a valid rt. */
NG_API ng_status ng_token_clear(ng_runtime *rt, size_t *removed_tokens,
                                size_t *removed_connections);
/** Cursor: *next_id = the smallest live token id greater than `after`
 *  (start with 0). NG_ENOTFOUND at the end. Tokens created during a loop are
 *  visited (their ids are higher); deleted ones are skipped. */
NG_API ng_status ng_token_next(ng_runtime *rt, ng_id after, ng_id *next_id);
/** Callback: return false to stop. `tok` is valid only during the call. */
typedef bool (*ng_token_fn)(const ng_token *tok, ng_id id, void *ud);
/** Call fn for every live token in ascending id order, under the read lock. */
NG_API ng_status ng_token_each(ng_runtime *rt, ng_token_fn fn, void *ud);
/**
 * Ids of the connections of token `id` in direction `dir`, ascending, into
 * ids[0..cap) (may be NULL when cap is 0); *n_out (required) gets the total
 * number (which may exceed cap, like snprintf). A bidirectional link is both
 * outgoing and incoming at both ends (ng_token_links). NG_ENOTFOUND if the
 * token does not exist.
 */
NG_API ng_status ng_token_connections(ng_runtime *rt, ng_id id, ng_direction dir, ng_id *ids,
                                      size_t cap, size_t *n_out);

/** "Any type" / "any category" in an ng_link_filter. */
#define NG_ANY (-1)
/** Which links of a token ng_token_links reports. */
typedef struct ng_link_filter {
  ng_direction dir; /**< NG_OUT, NG_IN or NG_BOTH */
  int type;         /**< a connection type 0..175, or NG_ANY */
  int category;     /**< a category 0..10, or NG_ANY */
} ng_link_filter;
/**
 * The links of token `id` that match `f` (NULL: every link, both
 * directions), in ascending connection id order: their ids into
 * conns[0..cap) and the token at each one's other end into others[0..cap)
 * (either may be NULL; the token itself for a self-link); *n_out (required)
 * gets the total number, which may exceed cap, so cap 0 counts without
 * building lists (a degree). A link with NG_CONN_BIDIRECTIONAL acts both
 * ways: it is an outgoing and an incoming link of both its ends, listed once
 * under NG_BOTH. NG_ENOTFOUND if the token does not exist; NG_EINVAL for a
 * bad direction, type or category.
 */
NG_API ng_status ng_token_links(ng_runtime *rt, ng_id id, const ng_link_filter *f, ng_id *conns,
                                ng_id *others, size_t cap, size_t *n_out);

/** @} */
/* ------------------------------------------------------------------------ */
/** @name Graph walks (graph.c)
 * Walks over the connections as a graph, in the read lock (so they see one
 * commit), allocation-free per step: they reuse a scratch area the runtime
 * keeps (a mark per token slot, a queue, a heap; held by one walk at a time,
 * a concurrent walk allocates its own). A link is crossed the way
 * ng_token_links lists it: NG_OUT follows from -> to, NG_IN to -> from, and
 * a bidirectional link both ways; a token's links are taken in ascending
 * connection id order, so every result is deterministic. */
/** @{ */

/** Which links a walk may cross. All zero: outgoing links of any type, any
 *  depth. A link must pass both the type and the category set. */
typedef struct ng_walk {
  ng_direction dir;    /**< NG_OUT (or 0), NG_IN or NG_BOTH */
  uint32_t max_depth;  /**< most hops from the start; 0 = no limit */
  uint64_t types[3];   /**< bit t % 64 of types[t / 64]: type t may be crossed; all 0 = any */
  uint16_t categories; /**< bit c: category c may be crossed; 0 = any */
} ng_walk;

/**
 * Breadth-first walk from `start` (w NULL: all zero): the tokens reached,
 * start first at depth 0, in BFS order (a token's neighbours in ascending
 * connection id order), each once with its depth (hops), into
 * ids[0..cap) and depths[0..cap) (depths may be NULL); *n_out (required)
 * gets the total, which may exceed cap (cap 0 counts). A neighbourhood of
 * `hops` is this walk with max_depth = hops. NG_ENOTFOUND: no such start
 * token; NG_EINVAL: a bad direction, type bit (176 and above) or category
 * bit (11 and above).
 */
NG_API ng_status ng_graph_bfs(ng_runtime *rt, ng_id start, const ng_walk *w, ng_id *ids,
                              uint32_t *depths, size_t cap, size_t *n_out);

/** How a path search costs a link. */
typedef enum ng_cost {
  NG_COST_HOPS = 0, /**< 1 per link */
  NG_COST_WEIGHT,   /**< -ln(w), w the link's ng_weight_field: stronger is cheaper */
  NG_COST_DISTANCE, /**< the distance between its ends in `space` (A*) */
  NG_COST_FN        /**< what `fn` returns */
} ng_cost;

/** The connection field a link's strength w (0..1) comes from. */
typedef enum ng_weight_field {
  NG_WEIGHT_CONFIDENCE = 0, /**< confidence / 255 */
  NG_WEIGHT_PULL            /**< pull_strength / 10, clamped to 0..1 (repulsion carries nothing) */
} ng_weight_field;

/** A link's cost for NG_COST_FN: `c` is a copy of the record (read-only),
 *  `conn` its id, the walk crossing it from token `from` to token `to`.
 *  Called with no lock held (it may call the store; the walk then sees
 *  its writes only in the tokens it has not expanded yet). Return a cost
 *  >= 0, +infinity to refuse the link, or NaN / a negative number to stop
 *  the search (NG_EINVAL, or the caller's own error). */
typedef double (*ng_cost_fn)(const ng_connection *c, ng_id conn, ng_id from, ng_id to, void *ud);

/** Options of ng_graph_path; all zero: fewest hops over outgoing links. */
typedef struct ng_path_opts {
  ng_walk walk;          /**< links that may be crossed (its max_depth is not used) */
  ng_cost cost;          /**< how a link is costed */
  ng_weight_field field; /**< for NG_COST_WEIGHT */
  int space;             /**< for NG_COST_DISTANCE: 0..7 */
  double max_cost;       /**< paths costing more are not found; 0 = no limit */
  ng_cost_fn fn;         /**< for NG_COST_FN */
  void *ud;              /**< passed to fn */
} ng_path_opts;

/**
 * A cheapest path from `from` to `to` (o NULL: all zero): Dijkstra, or A*
 * with the straight-line distance to `to` as its heuristic under
 * NG_COST_DISTANCE (which crosses only links whose ends are both placed in
 * the space). The tokens from `from` to `to` into ids[0..cap); *n_out
 * (required) gets the path's length in tokens, which may exceed cap (then
 * ids holds nothing useful: call again with room); *cost (may be NULL) its
 * cost. Ties: among equally cheap ways to reach a token, the one through
 * the predecessor with the smallest id, so one store gives one path.
 * NG_ENOTFOUND: a missing end token, or no path (within max_cost);
 * NG_EINVAL: bad options, or fn returned NaN or a negative cost.
 */
NG_API ng_status ng_graph_path(ng_runtime *rt, ng_id from, ng_id to, const ng_path_opts *o,
                               ng_id *ids, size_t cap, size_t *n_out, double *cost);

/** How spreading activation combines several arrivals at one token. */
typedef enum ng_spread_mode {
  NG_SPREAD_FIRST = 0, /**< the original's: a token keeps its first arrival in BFS order */
  NG_SPREAD_SUM,       /**< the sum over all arrivals (walks) */
  NG_SPREAD_MAX        /**< the strongest arrival */
} ng_spread_mode;

/** Options of ng_graph_spread; ng_spread_init sets the original's defaults. */
typedef struct ng_spread_opts {
  ng_walk walk;          /**< links energy crosses (max_depth 0 is refused: see init) */
  ng_weight_field field; /**< w of a link */
  ng_spread_mode mode;
  double min_energy; /**< energy below this does not cross a link (0.01) */
  double decay;      /**< a link passes E * w * (1 - decay) (0.2), 0..1 */
  double threshold;  /**< tokens below this energy are not reported (0.1) */
} ng_spread_opts;

/** The original's defaults: outgoing links of any type, max_depth 5,
 *  confidence, NG_SPREAD_FIRST, min_energy 0.01, decay 0.2, threshold 0.1. */
NG_API void ng_spread_init(ng_spread_opts *o);

/** A token that spreading activation reached. Its path (source first, the
 *  token last, depth + 1 tokens) is path[path_off .. path_off + depth]. */
typedef struct ng_activation {
  ng_id id;
  ng_id source; /**< the source its path starts from */
  double energy;
  uint32_t depth; /**< the hops of its path */
  size_t path_off;
} ng_activation;

/**
 * Spreading activation from sources[0..n) with energies[0..n) (NULL: 1
 * each): energy E at a token crosses each link the walk allows as
 * E * w * (1 - decay), not when that is below min_energy, for at most
 * max_depth hops. NG_SPREAD_FIRST: a breadth-first walk in which a token
 * takes the energy of its first arrival and passes it on once.
 * NG_SPREAD_SUM / NG_SPREAD_MAX: level by level, the energy arriving at a
 * token at depth d is the sum (the maximum) of what its predecessors at
 * depth d - 1 pass on, and passes on in turn; a token's energy is the sum
 * (the maximum) over depths, its path the strongest arrival's route (a
 * source's arrivals add to its own energy under SUM). The tokens with
 * energy >= threshold, by energy (descending) then id, into out[0..cap),
 * their paths into path[0..path_cap); *n_out and *path_n (both required)
 * get the totals (cap 0 / path_cap 0 count). NG_ENOTFOUND: a source is
 * missing; NG_EINVAL: a source given twice, an energy not finite and >= 0,
 * max_depth 0, min_energy, decay or threshold out of range or NaN.
 */
NG_API ng_status ng_graph_spread(ng_runtime *rt, const ng_id *sources, const double *energies,
                                 size_t n, const ng_spread_opts *o, ng_activation *out, size_t cap,
                                 size_t *n_out, ng_id *path, size_t path_cap, size_t *path_n);

/** @} */
/* ------------------------------------------------------------------------ */
/** @name Connection store */
/** @{ */

/** Connection slots are 1 .. NG_CONNECTION_SLOT_MAX (the most connections
 *  alive at once); generations take the 21 bits above, below 2^53. */
#define NG_CONNECTION_SLOT_MAX 0xFFFFFFFEu
#define NG_CONNECTION_SLOT_BITS 32

/**
 * Store a new connection from -> to (both live token ids) with the fields of
 * `c` (may be NULL: ng_connection_init's defaults; its endpoint fields are
 * ignored and set to the endpoints' slots). Every other field is honoured; created_at/last_update 0
 * become now. Checks: both tokens exist (NG_EINVAL naming the missing one);
 * type <= 0xAF and allowed by the CDNA mask; mutability <= 2; pull_strength
 * finite, |v| <= 10; preferred_distance finite within 0.01..100; padding 0;
 * no connection with the same (from, to, type), nor a (to, from, type) when
 * either is bidirectional (NG_EEXIST, see ng_connection_find); the CDNA degree
 * limits (NG_ELIMIT); with STRICT_MODE the CDNA's connection weight (applied
 * to |pull_strength|) and rigidity limits. *out_id (may be NULL) gets the
 * new id.
 */
NG_API ng_status ng_connection_create(ng_runtime *rt, ng_id from, ng_id to, const ng_connection *c,
                                      ng_id *out_id);
/** Copy connection `id` into *out (its endpoint fields hold the endpoints'
 *  slots). NG_ENOTFOUND if there is none. */
NG_API ng_status ng_connection_get(ng_runtime *rt, ng_id id, ng_connection *out);
/** The full ids of connection `id`'s endpoints into *from and *to (each may
 *  be NULL). NG_ENOTFOUND if there is none. */
NG_API ng_status ng_connection_ends(ng_runtime *rt, ng_id id, ng_id *from, ng_id *to);
/** Write the fields selected by `fields` (NG_CF_*), atomically, with the
 *  checks of create. Endpoints never change. NG_ENOTFOUND, NG_EINVAL, NG_EEXIST. */
NG_API ng_status ng_connection_update(ng_runtime *rt, ng_id id, const ng_connection *values,
                                      uint32_t fields);
/** Apply a learning rule to connection `id` atomically, using the runtime's
 *  clock; *out (may be NULL) gets the record afterwards. */
NG_API ng_status ng_connection_learn(ng_runtime *rt, ng_id id, ng_learn_op op, ng_connection *out);
/** Delete connection `id`. NG_ENOTFOUND. */
NG_API ng_status ng_connection_delete(ng_runtime *rt, ng_id id);
/** Number of live connections. */
NG_API size_t ng_connection_count(ng_runtime *rt);
/** As ng_token_list, for connection ids: ids[] may be NULL when limit is 0;
 *  *n_out (required) gets how many were written. */
NG_API ng_status ng_connection_list(ng_runtime *rt, size_t offset, size_t limit, ng_id *ids,
                                    size_t *n_out);
/** As ng_token_next, for connection ids. */
NG_API ng_status ng_connection_next(ng_runtime *rt, ng_id after, ng_id *next_id);
/** Callback: return false to stop. `c` is valid only during the call. */
typedef bool (*ng_connection_fn)(const ng_connection *c, ng_id id, void *ud);
/** Call fn for every live connection in ascending id order, under the read lock. */
NG_API ng_status ng_connection_each(ng_runtime *rt, ng_connection_fn fn, void *ud);
/**
 * Id of the connection (from, to, type), or of a bidirectional (to, from,
 * type); NG_ENOTFOUND if there is none.
 *
 * Undirected links: a connection with NG_CONN_BIDIRECTIONAL acts both ways.
 * It keeps the direction it was created with, but is found from both ends,
 * listed as outgoing and incoming at both ends, and unique in both
 * directions: while a -> b of a type is bidirectional no b -> a of that type
 * exists, and create or update (setting the flag, changing the type) refuse
 * to make such a pair (NG_EEXIST). The CDNA degree limits count every link as
 * stored, bidirectional or not (one outgoing for its from, one incoming for
 * its to, one in each end's total), so the flag never changes a degree.
 * Snapshots from before this rule that hold such a pair load as they are.
 */
NG_API ng_status ng_connection_find(ng_runtime *rt, ng_id from, ng_id to, unsigned type,
                                    ng_id *out_id);

/** @} */
/* ------------------------------------------------------------------------ */
/** @name Grid: spatial queries, one index per space */
/** @{ */

/** One query result: a token id and its Euclidean distance (decoded units,
 *  rounded to float: see "Distances" below). */
typedef struct ng_hit {
  ng_id id;
  float distance;
  uint32_t reserved; /**< 0 */
} ng_hit;

/**
 * A growable result buffer owned by the caller and reused across queries (so
 * a game loop allocates nothing once it has grown; a query of 1024 hits or
 * more grows it to twice its result, as sorting scratch). Zero-initialise it; the
 * queries replace its contents; free it with ng_hits_free on the runtime that
 * filled it. On failure a query leaves count == 0.
 *
 * With `positions` set (by the caller, before the query), a query also fills
 * xyz[3 * i .. 3 * i + 2] with hit i's position in the query's space (its
 * units, as ng_token_position reads them), read under the query's own read
 * lock, so a frame needs no second read; xyz grows like items.
 */
typedef struct ng_hits {
  ng_hit *items;
  size_t count;
  size_t capacity;
  bool positions;      /**< fill xyz: set by the caller */
  double *xyz;         /**< 3 per hit when positions is set; owned like items */
  size_t xyz_capacity; /**< doubles xyz has room for */
} ng_hits;
/** Free hits->items and hits->xyz through rt's allocator (the runtime that
 *  filled it) and zero *hits, ready for reuse. A NULL rt or hits is ignored. */
NG_API void ng_hits_free(ng_runtime *rt, ng_hits *hits);

/** A filter's predicate: return true to keep the hit. See ng_filter.accept. */
typedef bool (*ng_accept_fn)(ng_id id, float distance, void *ud);

/**
 * What a grid query keeps, tested inside the index scan (a token that fails
 * is skipped, never collected): so a query with a filter costs about what
 * the same query without one does, plus a read of the record of each token
 * within the query's region when a field test needs it. A zeroed struct, or
 * a NULL filter, is the default: every token placed in the space whose
 * NG_TOKEN_ACTIVE flag is set.
 */
typedef struct ng_filter {
  uint16_t entities;  /**< bit e keeps entity type e (ng_token_get_entity); 0: every entity */
  uint16_t tags;      /**< NG_TOKEN_* flag bits that must all be set */
  uint16_t without;   /**< NG_TOKEN_* flag bits that must all be clear */
  bool inactive;      /**< also keep tokens whose NG_TOKEN_ACTIVE flag is clear */
  bool weight_range;  /**< keep only weights within [min_weight, max_weight] (inclusive) */
  float min_weight;   /**< with weight_range: finite, <= max_weight */
  float max_weight;   /**< with weight_range: finite */
  const ng_id *exclude; /**< ids never returned (unknown and stale ids are ignored); borrowed
                             for the call; may be NULL when nexclude is 0 */
  size_t nexclude;
  /** Called last, for each token that passed every test above and the
   *  query's own (distance, box), with its id and distance; false skips it.
   *  NULL: none. It runs under the runtime's read lock, on the calling
   *  thread, in no particular order: it may read the store (a write from it
   *  fails with NG_EBUSY) but must not run a query of the same space. */
  ng_accept_fn accept;
  void *ud; /**< passed to accept */
} ng_filter;

/*
 * All queries see only the tokens placed in their space that pass their
 * filter (`filter` may be NULL: the defaults of ng_filter, so tokens whose
 * NG_TOKEN_ACTIVE flag is clear are skipped unless filter->inactive is set;
 * a bad filter is NG_EINVAL naming the field), and take and give
 * coordinates and distances in the space's units (dimension scale applied).
 * Results ordered by distance, ties by ascending id; `limit` 0
 * means no limit, otherwise only the first `limit` results are kept. A radius
 * must be finite and >= 0 (NG_EINVAL otherwise); a bad space is NG_EINVAL.
 *
 * Distances: each coordinate is decoded to a float (at dimension scale 1.0
 * exactly as ng_coord_decode does),
 * the Euclidean distance over those floats is computed in double precision
 * and rounded to the nearest float, which is ng_hit.distance. A radius query
 * keeps a token iff that float distance <= radius: inclusion and the reported
 * distance are one computation, so raw (30, 40, 0) in L1, reported 0.5 from
 * the origin (its double distance is just above), is in a 0.5 radius query.
 * Nearest orders by the same float distance; a box tests each decoded
 * coordinate against [lo, hi]. Results are deterministic.
 */
/** Tokens within `radius` of `center` in `space`. */
NG_API ng_status ng_grid_range(ng_runtime *rt, int space, const float center[3], float radius,
                               size_t limit, const ng_filter *filter, ng_hits *out);
/** Tokens within `radius` of token `id` in `space`, excluding `id` itself.
 *  NG_ENOTFOUND if `id` does not exist or is not placed in `space` (the
 *  filter does not apply to `id` itself: an inactive token has neighbours). */
NG_API ng_status ng_grid_neighbors(ng_runtime *rt, ng_id id, int space, float radius, size_t limit,
                                   const ng_filter *filter, ng_hits *out);
/** The k tokens nearest to `center` in `space` that pass the filter (fewer if
 *  fewer pass). */
NG_API ng_status ng_grid_nearest(ng_runtime *rt, int space, const float center[3], size_t k,
                                 const ng_filter *filter, ng_hits *out);
/** The k tokens nearest to token `id` in `space` that pass the filter,
 *  excluding `id` itself. NG_ENOTFOUND as ng_grid_neighbors. */
NG_API ng_status ng_grid_nearest_to(ng_runtime *rt, ng_id id, int space, size_t k,
                                    const ng_filter *filter, ng_hits *out);
/** Tokens inside the closed box [lo, hi] in `space`; distance is measured
 *  from the box centre. NG_EINVAL if lo > hi on any axis. */
NG_API ng_status ng_grid_box(ng_runtime *rt, int space, const float lo[3], const float hi[3],
                             size_t limit, const ng_filter *filter, ng_hits *out);
/**
 * The positions in `space` (its units, as ng_token_position reads them) of
 * the n tokens ids[0..n) into xyz[3 * i .. 3 * i + 2], all under one read
 * lock (so they are one consistent moment). A token that does not exist or
 * is not placed in `space` gets NaN, NaN, NaN; *found (may be NULL) gets how
 * many were found. NG_EINVAL for a bad space or NULL arrays with n > 0.
 */
NG_API ng_status ng_token_positions(ng_runtime *rt, int space, const ng_id *ids, size_t n,
                                    double *xyz, size_t *found);

/** Grid figures for one space. */
typedef struct ng_space_info {
  size_t count;       /**< tokens indexed (the tokens placed in the space) */
  size_t cells;       /**< non-empty cells */
  float cell_size;    /**< the CDNA's nominal bucket size (decoded units) */
  float lo[3], hi[3]; /**< true bounds of the indexed points; all 0 when empty */
  double step;        /**< the space's unit: one raw step, in decoded units */
  double min, max;    /**< the range a coordinate may take */
} ng_space_info;
/** Fill *out with the figures of `space`'s index (brings a built index up to
 *  date first; an unbuilt one is not built for this). NG_EINVAL for a bad
 *  space or NULL argument, NG_ENOMEM; *out is then zero but cell_size. */
NG_API ng_status ng_grid_info(ng_runtime *rt, int space, ng_space_info *out);

/** @} */
/* ------------------------------------------------------------------------ */
/** @name CDNA of a runtime */
/** @{ */

/** Copy the runtime's CDNA. */
NG_API ng_status ng_cdna_get(ng_runtime *rt, ng_cdna *out);
/**
 * Replace the runtime's CDNA with `c`. created_at is kept, modified_at set to
 * now and the checksum recomputed before validation, so callers need not
 * maintain them. Everything else is validated (ng_cdna_validate); on failure
 * NG_EINVAL with the reason and nothing changes. Tightened limits apply to
 * later writes; existing records stay. A changed dimension scale re-encodes
 * the coordinates of every token placed in that space (each position decoded
 * in the old units, encoded in the new: whole steps of the new unit stay
 * exact, the rest truncates), all or nothing: if one coordinate does not fit
 * the new range, NG_EINVAL names the first such token and space and nothing
 * changes. NG_ENOMEM.
 */
NG_API ng_status ng_cdna_set(ng_runtime *rt, const ng_cdna *c);
/** Apply `profile`'s preset to the current CDNA: profile_id and only the
 *  fields that profile defines (see ng_cdna_init; flag bits are added); every
 *  other field, scales included, stays. created_at is kept. To return to every
 *  default, ng_cdna_set a block from ng_cdna_init. NG_EINVAL for an unknown
 *  profile or a result that does not validate (nothing changes). */
NG_API ng_status ng_cdna_set_profile(ng_runtime *rt, uint32_t profile);

/** @} */
/* ------------------------------------------------------------------------ */
/** @name Events: the change feed, subscriptions and trigger zones */
/** @{ */

/**
 * Every committed write appends events to one feed, in commit order: a single
 * call, a batch (ng_token_update_batch) or a whole transaction (at
 * ng_txn_commit) is one commit; a rolled-back transaction, or the part of one
 * a savepoint rolled back, appends nothing. Events are recorded while the
 * CDNA has NG_CDNA_ENABLE_EVENTS and some subscription is open (the feed has
 * no other reader yet); cleared, the feed records nothing and zones are idle.
 */
typedef enum ng_event_kind {
  NG_EV_CREATE = 1,  /**< token created: id, placed */
  NG_EV_UPDATE,      /**< token fields other than coordinates written: id, fields */
  NG_EV_MOVE,        /**< token moved in `space` (or placed there: NG_EVF_PLACED) */
  NG_EV_UNPLACE,     /**< token taken out of `space` (from_xyz: where it was) */
  NG_EV_DELETE,      /**< token deleted: id, placed (the spaces it had) */
  NG_EV_LINK,        /**< connection created: id, from, to, conn_type */
  NG_EV_LINK_UPDATE, /**< connection fields written (update, learn): id, from, to */
  NG_EV_UNLINK,      /**< connection deleted (also with its token, or a clear) */
  NG_EV_CDNA,        /**< the CDNA changed */
  NG_EV_ENTER,       /**< token id entered zone `zone` in `space` */
  NG_EV_LEAVE,       /**< token id left zone `zone` in `space` */
  NG_EV_KINDS        /**< one past the last kind */
} ng_event_kind;

/** ng_event.flags bits. */
enum {
  NG_EVF_LAST = 0x1,  /**< the last event of its commit */
  NG_EVF_PLACED = 0x2 /**< a move that placed the token in the space: from_xyz unused */
};

/** One event of the feed (72 bytes: a frame's moves are copied cheaply). Fields a kind
 *  does not name are 0. */
typedef struct ng_event {
  uint64_t seq;        /**< position in the feed: 1, 2, ... (per runtime, gap-free) */
  uint64_t commit;     /**< the commit it belongs to: 1, 2, ... */
  ng_id id;            /**< the token (token kinds, enter, leave) or the connection */
  ng_id from, to;      /**< connection kinds: the endpoint tokens */
  uint64_t zone;       /**< enter, leave: the zone */
  uint32_t fields;     /**< update: the NG_TF_* bits written (coordinates excluded);
                            link_update: the NG_CF_* bits (0 for a learning step) */
  uint8_t kind;        /**< ng_event_kind */
  int8_t space;        /**< move, unplace, enter, leave: the space; else -1 */
  uint8_t flags;       /**< NG_EVF_* */
  uint8_t placed;      /**< token kinds: its spaces after the write (before, for delete) */
  uint16_t token_flags; /**< token kinds, enter, leave: the token's flags (entity type in
                             bits 8-11) after the write (before, for delete) */
  uint8_t conn_type;   /**< connection kinds: the type */
  uint8_t reserved;    /**< 0 */
  int16_t from_xyz[3]; /**< move, unplace, leave: raw position before */
  int16_t to_xyz[3];   /**< move, enter: raw position after */
} ng_event;

/** "create", "update", "move", "unplace", "delete", "link", "link_update",
 *  "unlink", "cdna", "enter", "leave"; NULL for another value. */
NG_API const char *ng_event_kind_name(unsigned kind);
/** The kind of a name above; -1 if unknown. */
NG_API int ng_event_kind_from_name(const char *name);

/** A subscription: its own bounded queue of the feed's events that pass its
 *  filter. Opaque. */
typedef struct ng_sub ng_sub;

/** The default cap of a subscription's queue (events). */
#define NG_SUB_CAP_DEFAULT 65536u

/** What a subscription receives. Zero-initialised: every event. */
typedef struct ng_sub_filter {
  uint32_t kinds;    /**< bit 1 << NG_EV_* per kind wanted; 0: every kind */
  uint32_t spaces;   /**< bit per space; 0: any. Set, an event passes when it
                          has a space in the mask (move, unplace, enter, leave)
                          or is about a token placed in one (create, update,
                          delete); connection and CDNA events never do. */
  uint32_t entities; /**< bit per entity type; 0: any. Set, only token events
                          and enter/leave of a token of such a type pass. */
  size_t cap;        /**< most events held; 0: NG_SUB_CAP_DEFAULT */
} ng_sub_filter;

/**
 * Open a subscription on rt (it holds a reference to rt until closed). It
 * sees every commit published after it opened, in the feed's order, like
 * every other subscription of rt, from any thread. (What a commit records is
 * decided when it begins: one already running when the first subscription
 * opens records nothing, and one running when a subscription opens holds
 * only the kinds the subscriptions open at its start wanted.) Writers never wait
 * for it: when its queue holds `cap` events, later ones are dropped and
 * counted (ng_sub_poll, ng_sub_lost). NG_EINVAL (NULL argument, unknown
 * bits), NG_ENOMEM. Safe from any thread, also inside a transaction or an
 * iteration callback.
 */
NG_API ng_status ng_sub_open(ng_runtime *rt, const ng_sub_filter *filter, ng_sub **out);
/**
 * Move up to `cap` queued events, oldest first, into events[0..*n). `lost`
 * (may be NULL) receives the count of events dropped since the last report
 * and resets it. Never blocks on a writer. NG_EINVAL (NULL sub or n, NULL
 * events with cap > 0).
 */
NG_API ng_status ng_sub_poll(ng_sub *sub, ng_event *events, size_t cap, size_t *n, uint64_t *lost);
/** The count of events dropped since the last report; resets it. 0 for NULL. */
NG_API uint64_t ng_sub_lost(ng_sub *sub);
/** Events waiting in the queue. 0 for NULL. */
NG_API size_t ng_sub_pending(ng_sub *sub);
/** Close the subscription: no more events; frees it and releases its
 *  runtime. NULL is a no-op. */
NG_API void ng_sub_close(ng_sub *sub);

/** Zone shapes. */
typedef enum ng_zone_shape { NG_ZONE_SPHERE = 0, NG_ZONE_BOX = 1 } ng_zone_shape;

/** A trigger zone: a sphere or an axis-aligned box of one space (decoded
 *  units, bounds inclusive), and which tokens it watches. */
typedef struct ng_zone_spec {
  int space;           /**< 0..7 */
  int shape;           /**< ng_zone_shape */
  double center[3];    /**< sphere */
  double radius;       /**< sphere: >= 0 */
  double lo[3], hi[3]; /**< box: lo <= hi on each axis */
  int entity;          /**< -1: any; else only tokens of this entity type (0..15) */
  uint16_t tags;       /**< flag bits a token must all have (0: any) */
} ng_zone_spec;

/**
 * Add a trigger zone; *out receives its id (1, 2, ..., never reused). While
 * events are recorded, the feed gets NG_EV_ENTER / NG_EV_LEAVE (token, zone,
 * space) each time a token that passes the zone's filter crosses its
 * boundary by a move, a placement, a create, a delete or an unplace (a write
 * of flags or entity is not a crossing), and an enter for every such token
 * inside when the zone is added. Zones are not part of the store: not saved,
 * not undone, and refused inside a transaction (NG_EBUSY). NG_EINVAL for a
 * bad spec, NG_ENOMEM.
 */
NG_API ng_status ng_zone_add(ng_runtime *rt, const ng_zone_spec *spec, uint64_t *out);
/** Replace zone `zone`'s spec (move, resize, change space or filter): the
 *  tokens the change takes out get a leave, those it takes in an enter.
 *  NG_ENOTFOUND, NG_EINVAL, NG_ENOMEM, NG_EBUSY as ng_zone_add. */
NG_API ng_status ng_zone_set(ng_runtime *rt, uint64_t zone, const ng_zone_spec *spec);
/** Copy zone `zone`'s spec. NG_ENOTFOUND, NG_EINVAL. */
NG_API ng_status ng_zone_get(ng_runtime *rt, uint64_t zone, ng_zone_spec *out);
/** Remove zone `zone` (no events). NG_ENOTFOUND, NG_EBUSY (in a transaction). */
NG_API ng_status ng_zone_remove(ng_runtime *rt, uint64_t zone);
/** The number of zones of rt. */
NG_API size_t ng_zone_count(ng_runtime *rt);

/** @} */
/* ------------------------------------------------------------------------ */
/** @name Snapshots: one file per runtime (format: docs/format.md) */
/** @{ */

/**
 * Save the whole runtime (CDNA, tokens, connections, the next ids) to `path`.
 *
 * The snapshot is one consistent point in time: the runtime's read lock is
 * held while the bytes are written, so other threads may keep reading (and
 * writers wait only for that part, not for the fsync). The file is written as
 * a temporary file in the same directory, fsynced, renamed over `path`, and
 * the directory is fsynced: a crash at any moment leaves either the previous
 * file or the complete new one. May be called from inside a *_each callback.
 * Symbolic links are followed: the final target is replaced (in its own
 * directory) and the links stay links. An existing file keeps its permission
 * bits; a new one gets 0666 & ~umask. Other hard links to the old file keep
 * the old content (see docs/format.md).
 *
 * @return NG_OK; NG_EINVAL for a NULL rt or a NULL/empty path; NG_ENOMEM;
 *         NG_EIO when a system call fails (ng_last_error(rt) names the path
 *         and the system's reason) or when `path` exists and is not a
 *         regular file (a directory, FIFO, device or socket is never
 *         replaced). On failure no temporary file is left behind and an
 *         existing file at `path` is untouched.
 */
NG_API ng_status ng_snapshot_save(ng_runtime *rt, const char *path);

/**
 * A background save (ng_snapshot_save_background): opaque. The caller owns
 * it and frees it with ng_save_free, running or not.
 */
typedef struct ng_save ng_save;

/**
 * Start saving the runtime to `path` without holding the caller for the
 * writing: the state at the call is saved, and the caller goes on at once.
 *
 * Like Redis's BGSAVE, the call fork()s under the runtime's read lock (a
 * commit boundary: no write in flight; readers go on); the child process
 * writes the snapshot exactly as ng_snapshot_save does (temporary file,
 * fsync, rename, directory fsync: a crash or kill at any moment leaves the
 * previous file or the complete new one) and reports to a thread of this
 * process, which reaps it. The caller is held for the fork only (copying
 * the page tables: a few milliseconds at 1M tokens and 1M connections, see
 * bench/bench_bgsave.c); writes made after the call returns are not in the
 * file. Afterwards the first write to each memory page of the store takes a
 * page fault (a copy while the child runs: copy-on-write), so the writes
 * that follow a background save are slower for a while, and memory in use
 * can grow up to the store's size again in the worst case (see
 * docs/performance.md). No progress is reported
 * (ng_config.progress is not called). Ask how it went with ng_save_status.
 * May be called from inside a *_each callback.
 *
 * One background save per runtime at a time: a second while one runs is
 * NG_EBUSY (ng_snapshot_save may still be used). ng_runtime_release, when it
 * frees the runtime, first waits for a running save to finish. The process
 * must let this library reap its child: a SIGCHLD handler or another thread
 * that calls wait() or waitpid(-1) may take it (the save still reports its
 * own outcome; a child reaped elsewhere that died without reporting is
 * reported as ended without a report). POSIX only (fork).
 *
 * @return NG_OK (*out: the running save); NG_EINVAL (NULL rt, out, or a
 *         NULL/empty path); NG_EBUSY (a background save of rt is running,
 *         or called inside this thread's transaction on rt, which would save
 *         its uncommitted writes); NG_ENOMEM (including fork's EAGAIN);
 *         NG_EIO (the temporary file cannot be created, `path` is not a
 *         regular file, or fork failed otherwise: no synchronous fallback,
 *         the caller decides). On failure *out is NULL, nothing is left on
 *         disk and ng_last_error(rt) says why. Errors of the writing itself
 *         come from ng_save_status.
 */
NG_API ng_status ng_snapshot_save_background(ng_runtime *rt, const char *path, ng_save **out);

/**
 * How a background save is doing. With `wait`, first waits until it ends.
 * `message` may be NULL; otherwise *message is the failure's text for a
 * failed save (the step, the path and the system's reason, as
 * ng_last_error_detail gives them: "writing /x/world.ngs: No space left on
 * device"; owned by `job`, valid until ng_save_free), NULL otherwise.
 *
 * @return NG_OK (done: the file is complete and durable); NG_EBUSY (still
 *         running; never with `wait`); NG_EIO (the save failed: the previous
 *         file at the path is untouched and no temporary file is left; also
 *         when the child was killed, which after its rename leaves the
 *         complete new file); NG_EINVAL (NULL job).
 */
NG_API ng_status ng_save_status(ng_save *job, bool wait, const char **message);

/**
 * Free the handle of a background save. A running save is not stopped or
 * waited for: it finishes on its own. NULL is ignored.
 */
NG_API void ng_save_free(ng_save *job);

/**
 * Load a snapshot into a new runtime (reference count 1) in *out.
 *
 * Everything is validated before the runtime is built: the header, the
 * section lengths against the real file length (a lying header never causes
 * an allocation), every checksum, the CDNA (ng_cdna_validate), every token
 * (ids ascending, unique, below the stored next id; weight finite within
 * 0..100; entity copy in the id equal to the flags') and every connection
 * (ids ascending and unique; known type; both endpoints in the file;
 * mutability 0..2; pull_strength and preferred_distance finite and in range;
 * padding 0; no two with the same (from, to, type)). The CDNA's policy limits
 * (allowed types, degree limits, strict-mode ranges) are not re-applied: they
 * may have been tightened after the records were made, and the store keeps
 * such records. Every id is kept; new ids continue after the stored next ids.
 *
 * `cfg` may be NULL. Its allocator, clock and capacity hints are used; its
 * `profile` and `cdna` are ignored (the file's CDNA wins).
 *
 * @return NG_OK; NG_EINVAL (NULL out/path); NG_EIO (cannot open or read:
 *         ng_last_error(NULL) names the path and the reason); NG_ECORRUPT (a
 *         corrupt, truncated or hostile file: the message names what is wrong);
 *         NG_EVERSION (written by a newer, incompatible format version);
 *         NG_ENOMEM. On failure *out is NULL.
 */
NG_API ng_status ng_snapshot_load(const char *path, const ng_config *cfg, ng_runtime **out);

/**
 * Write every token (its fields, the spaces it is placed in and its decoded
 * coordinates there), every connection, the CDNA and both id allocators'
 * state to `path` as JSON (docs/format.md, "JSON export"), one point in time
 * (under the read lock). The file is replaced atomically (temporary file and
 * rename). NG_EINVAL (NULL rt, NULL or empty path), NG_ENOMEM, NG_EIO (the
 * message names the path and the reason; an existing file is untouched).
 */
NG_API ng_status ng_export_json(ng_runtime *rt, const char *path);
/**
 * Read a JSON export into a new runtime (reference count 1) in *out: every
 * id kept, new ids continuing as after the export (the allocators' state is
 * in the file), coordinates re-encoded in the file's CDNA scales (whole
 * steps exact). The records then pass every check a snapshot load makes
 * (ng_snapshot_load). `cfg` as for ng_snapshot_load.
 * @return NG_OK; NG_EINVAL (NULL out/path); NG_EIO (cannot read the file);
 *         NG_ECORRUPT: invalid JSON (ng_last_error(NULL) gives the line and
 *         column) or a missing or bad value (the message names the token or
 *         connection id and the field); NG_ENOMEM. On failure *out is NULL:
 *         nothing is half imported.
 */
NG_API ng_status ng_import_json(const char *path, const ng_config *cfg, ng_runtime **out);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Durable worlds: a snapshot plus a write-ahead journal (format: docs/format.md) */
/** @{ */

/** When a durable world's journal is fsynced (ng_open_options.sync). Every
 *  committed write is in the file (the kernel's page cache) before the call
 *  returns whatever the mode, so killing the process loses nothing; the mode
 *  decides what a power cut can lose. */
typedef enum ng_sync_mode {
  NG_SYNC_BATCH = 0,  /**< fsync every interval_ms from a background thread (group commit) */
  NG_SYNC_ALWAYS = 1, /**< fsync before the writing call returns */
  NG_SYNC_OFF = 2     /**< never fsync: the OS writes the pages back when it likes */
} ng_sync_mode;

/** Options of ng_runtime_open. All zero = defaults. */
typedef struct ng_open_options {
  /** The runtime's configuration (NULL: defaults). A new world starts from it
   *  (profile, cdna, scales); an existing one keeps its own CDNA and uses
   *  only the allocator, clock, capacity hints and progress. */
  const ng_config *config;
  ng_sync_mode sync;
  unsigned interval_ms;      /**< NG_SYNC_BATCH's period (0: 100 ms) */
  /** A checkpoint runs by itself after the commit that takes the journal
   *  past this many bytes (0: 64 MiB; UINT64_MAX: never). */
  uint64_t checkpoint_bytes;
} ng_open_options;

/**
 * Open the durable world in directory `path` into a new runtime (reference
 * count 1) in *out: the same runtime ng_runtime_new makes, with a journal
 * attached. A missing directory is created holding an empty world
 * (snapshot 0 and journal 0); otherwise the newest snapshot is loaded and
 * every journal after it replayed (ids kept exactly). A torn record at the
 * end of the newest journal (a crash mid-append) is cut away; a bad record
 * anywhere else is NG_ECORRUPT naming the file and offset, never skipped.
 *
 * From then on every commit (a single write call, a batch, a transaction;
 * never a rolled-back one) is appended to the journal as one checksummed
 * record before the call returns, and fsynced as opt->sync says (in every
 * mode, a background thread of the runtime maps the journal's next pages
 * ahead of the writing calls). Releasing the last reference syncs and
 * closes the journal. If the journal cannot be written (a full disk, events
 * lost for want of memory), the commit that hit the failure stays in memory
 * only and every later write fails with NG_EIO until ng_checkpoint
 * succeeds. One runtime at a time may have a world open (an flock on the
 * directory, released when the runtime is freed).
 *
 * @return NG_OK; NG_EINVAL (NULL path or out, empty path, unknown sync mode;
 *         a bad opt->config as ng_runtime_new); NG_EIO (the directory cannot
 *         be created or read, the world is open in another runtime, a file
 *         cannot be opened, mapped or written:
 *         ng_last_error(NULL) names the path and the reason); NG_ECORRUPT,
 *         NG_EVERSION (a snapshot as ng_snapshot_load; a journal: the file,
 *         the offset and what is wrong); NG_ENOMEM. On failure *out is NULL.
 */
NG_API ng_status ng_runtime_open(const char *path, const ng_open_options *opt, ng_runtime **out);

/**
 * Checkpoint a durable world: under the write lock, start journal N+1 and
 * write snapshot N+1 of the store at that commit boundary (ng_snapshot_save:
 * temporary file, fsync, rename), then delete snapshot N and journal N. A
 * crash at any step leaves a world that opens to the same state. Writers
 * wait for the whole save. Clears a failed journal's refusal when it
 * succeeds. A background checkpoint still running is waited for first.
 *
 * @return NG_OK; NG_EINVAL (NULL rt, or a runtime without a journal);
 *         NG_EBUSY (called from inside an iteration callback or an open
 *         transaction); NG_EIO (a file cannot be written: the message names
 *         it; the world stays as it was, journaling on); NG_ENOMEM.
 */
NG_API ng_status ng_checkpoint(ng_runtime *rt);

/**
 * ng_checkpoint with snapshot N+1 written in the background: under the
 * write lock, journal N+1 is started and a background save of that commit
 * boundary (ng_snapshot_save_background) begins; the call returns as soon
 * as the save's process is forked, and *out is its handle (ng_save_status
 * says whether and how it ended; free it with ng_save_free). Snapshot N and
 * journal N are deleted, and a failed journal's refusal cleared, once the
 * save has succeeded: at the next checkpoint or when the runtime ends. Until
 * then, and if the save fails, the world opens from snapshot N and journals
 * N and N+1, to the same state. One at a time: ng_checkpoint waits for a
 * running one.
 *
 * @return NG_OK; NG_EINVAL (NULL rt or out, or a runtime without a journal);
 *         NG_EBUSY (inside an iteration callback or an open transaction, or
 *         a background checkpoint or save of rt is still running); NG_EIO,
 *         NG_ENOMEM (journal N+1 or the save could not start: the message
 *         says which). On failure *out is NULL.
 */
NG_API ng_status ng_checkpoint_background(ng_runtime *rt, ng_save **out);

/** @} */
#ifdef __cplusplus
}
#endif
#endif /* NEUROGRAPH_H */
