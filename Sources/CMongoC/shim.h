#include <mongoc/mongoc.h>
#include <bson/bson.h>

/* Debian builds libbson with 128-byte alignment on bson_t and bson_iter_t, so Swift sees both as
 * opaque and cannot place them on its stack. These helpers give properly aligned heap storage. */

/* An empty, initialised bson_t in aligned heap storage, usable where libmongoc wants "overwritable
 * storage for a bson_t" (replies). Free with CMongoC_bson_storage_free. */
static inline bson_t *CMongoC_bson_storage_new(void) {
    bson_t *b = (bson_t *) bson_aligned_alloc0(BSON_ALIGNOF(bson_t), sizeof(bson_t));
    bson_init(b);
    return b;
}

static inline void CMongoC_bson_storage_free(bson_t *b) {
    bson_destroy(b);
    bson_free(b);
}

static inline bson_iter_t *CMongoC_iter_new(void) {
    return (bson_iter_t *) bson_aligned_alloc0(BSON_ALIGNOF(bson_iter_t), sizeof(bson_iter_t));
}

static inline void CMongoC_iter_free(bson_iter_t *it) { bson_free(it); }
