/* A stand-in for fwpuclnt.dll and ConvertInterfaceAliasToLuid, compiled by wfp-native-dll.test.ts
 * so the koffi bindings cross a real FFI boundary. Structs as in fwptypes.h/fwpmtypes.h with
 * fixed-width members (wchar_t is 16 bits on Windows). The enumeration hands out heap pages the
 * way WFP does, and counts what is never given back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct { uint32_t Data1; uint16_t Data2, Data3; uint8_t Data4[8]; } GUID;
typedef struct { uint16_t *name, *description; } DISPLAY;
typedef struct { uint32_t size; uint8_t *data; } BLOB;
typedef struct { uint32_t type; union { uint8_t u8; uint16_t u16; uint32_t u32; uint64_t *u64; void *p; } v; } VALUE;
typedef struct { VALUE low, high; } RANGE;
typedef struct { GUID fieldKey; uint32_t matchType; VALUE value; } CONDITION;
typedef struct { uint32_t type; GUID filterType; } ACTION;
typedef struct {
  GUID sessionKey; DISPLAY displayData; uint32_t flags, txnWaitTimeoutInMSec, processId;
  void *sid; uint16_t *username; int32_t kernelMode;
} SESSION;
typedef struct {
  GUID filterKey; DISPLAY displayData; uint32_t flags; GUID *providerKey; BLOB providerData;
  GUID layerKey, subLayerKey; VALUE weight; uint32_t numFilterConditions; CONDITION *filterCondition;
  ACTION action; union { uint64_t rawContext; GUID providerContextKey; } context; GUID *reserved;
  uint64_t filterId; VALUE effectiveWeight;
} FILTER;
typedef struct {
  GUID *providerKey; GUID layerKey; uint32_t enumType, flags; void *providerContextTemplate;
  uint32_t numFilterConditions; CONDITION *filterCondition; uint32_t actionMask; GUID *calloutKey;
} ENUM_TEMPLATE;
typedef struct { GUID providerKey; DISPLAY displayData; uint32_t flags; BLOB providerData; uint16_t *serviceName; } PROVIDER;
typedef struct {
  GUID subLayerKey; DISPLAY displayData; uint32_t flags; GUID *providerKey; BLOB providerData; uint16_t weight;
} SUBLAYER;
typedef struct { uint32_t cursor; } ENUM_STATE;

static int engine_token;
static uint32_t session_flags, auth_service;
static int enum_total, outstanding_pages, destroyed_handles, enum_calls;
static GUID enum_sublayer, deleted_key, template_layer;
static uint32_t template_mask, filter_weight_type, filter_weight, filter_action, filter_flags, filter_count;
static uint64_t luid_condition;
static uint16_t range_low, range_high;
static char filter_name[64];
static GUID last_filter_key;
static int has_last_filter;

#define API __attribute__((visibility("default")))

API uint32_t FwpmEngineOpen0(const uint16_t *server, uint32_t authn, void *identity, const SESSION *s, void **engine) {
  if (server || identity) return 87;
  auth_service = authn;
  session_flags = s->flags;
  *engine = &engine_token;
  return 0;
}
static uint32_t check(void *engine) { return engine == &engine_token ? 0 : 6; /* ERROR_INVALID_HANDLE */ }
API uint32_t FwpmEngineClose0(void *e) { return check(e); }
API uint32_t FwpmTransactionBegin0(void *e, uint32_t flags) { return flags ? 87 : check(e); }
API uint32_t FwpmTransactionCommit0(void *e) { return check(e); }
API uint32_t FwpmTransactionAbort0(void *e) { return check(e); }
static uint32_t provider_key, sublayer_provider, sublayer_weight;
API uint32_t FwpmProviderAdd0(void *e, const PROVIDER *p, void *sd) {
  provider_key = p->providerKey.Data1;
  return sd ? 87 : check(e);
}
API uint32_t FwpmSubLayerAdd0(void *e, const SUBLAYER *s, void *sd) {
  sublayer_provider = s->providerKey->Data1;
  sublayer_weight = s->weight;
  return sd ? 87 : check(e);
}

API uint32_t FwpmFilterAdd0(void *e, const FILTER *f, void *sd, uint64_t *id) {
  if (sd || check(e)) return 87;
  if (has_last_filter && memcmp(&last_filter_key, &f->filterKey, sizeof(GUID)) == 0) return 0x80320009u;
  last_filter_key = f->filterKey;
  has_last_filter = 1;
  filter_flags = f->flags;
  filter_weight_type = f->weight.type;
  filter_weight = f->weight.v.u8;
  filter_action = f->action.type;
  filter_count = f->numFilterConditions;
  int i = 0;
  for (; f->displayData.name[i] && i < 63; i++) filter_name[i] = (char)f->displayData.name[i];
  filter_name[i] = 0;
  for (uint32_t c = 0; c < f->numFilterConditions; c++) {
    const CONDITION *cond = &f->filterCondition[c];
    if (cond->value.type == 4) luid_condition = *cond->value.v.u64;
    if (cond->value.type == 0x102) {
      const RANGE *r = cond->value.v.p;
      range_low = r->low.v.u16;
      range_high = r->high.v.u16;
    }
  }
  *id = 42;
  return 0;
}

API uint32_t FwpmFilterDeleteByKey0(void *e, const GUID *key) { deleted_key = *key; return check(e); }
/* Always FWP_E_SUBLAYER_NOT_FOUND, to see the code come through. */
API uint32_t FwpmSubLayerDeleteByKey0(void *e, const GUID *key) { deleted_key = *key; return e ? 0x80320007u : 6; }
API uint32_t FwpmProviderDeleteByKey0(void *e, const GUID *key) { deleted_key = *key; return check(e); }

API uint32_t FwpmFilterCreateEnumHandle0(void *e, const ENUM_TEMPLATE *t, void **handle) {
  if (check(e)) return 6;
  template_layer = t->layerKey;
  template_mask = t->actionMask;
  ENUM_STATE *state = calloc(1, sizeof *state);
  *handle = state;
  return 0;
}

/* Filter i: key {i+1, 0, 0, {0..}}, in the configured sublayer when i is even. */
API uint32_t FwpmFilterEnum0(void *e, void *handle, uint32_t wanted, FILTER ***entries, uint32_t *returned) {
  if (check(e)) return 6;
  enum_calls++;
  ENUM_STATE *state = handle;
  uint32_t left = (uint32_t)enum_total - state->cursor;
  uint32_t n = left < wanted ? left : wanted;
  *returned = n;
  *entries = NULL;
  if (n == 0) return 0;
  /* One allocation per page, as FwpmFreeMemory0 frees it in one go: pointers, then the filters. */
  FILTER **page = calloc(1, n * sizeof(FILTER *) + n * sizeof(FILTER));
  FILTER *filters = (FILTER *)(page + n);
  for (uint32_t i = 0; i < n; i++) {
    uint32_t index = state->cursor + i;
    filters[i].filterKey.Data1 = index + 1;
    if (index % 2 == 0) filters[i].subLayerKey = enum_sublayer;
    page[i] = &filters[i];
  }
  state->cursor += n;
  outstanding_pages++;
  *entries = page;
  return 0;
}

API uint32_t FwpmFilterDestroyEnumHandle0(void *e, void *handle) {
  free(handle);
  destroyed_handles++;
  return check(e);
}

API void FwpmFreeMemory0(void **p) {
  if (*p) outstanding_pages--;
  free(*p);
  *p = NULL;
}

API uint32_t ConvertInterfaceAliasToLuid(const uint16_t *alias, uint64_t *luid) {
  const char *want = "trellis0";
  for (int i = 0; want[i] || alias[i]; i++)
    if (alias[i] != (uint16_t)want[i]) return 1168; /* ERROR_NOT_FOUND */
  *luid = 0x6000001000000ull;
  return 0;
}

/* Probes and set-up for the test. */
API void fake_set_enum(int total, const GUID *sublayer) { enum_total = total; enum_sublayer = *sublayer; }
API int fake_outstanding_pages(void) { return outstanding_pages; }
API int fake_destroyed_handles(void) { return destroyed_handles; }
API int fake_enum_calls(void) { return enum_calls; }
API uint32_t fake_session_flags(void) { return session_flags; }
API uint32_t fake_auth_service(void) { return auth_service; }
API uint32_t fake_template_layer(void) { return template_layer.Data1; }
API uint32_t fake_template_mask(void) { return template_mask; }
API uint32_t fake_provider_key(void) { return provider_key; }
API uint32_t fake_sublayer(void) { return sublayer_provider; }
API uint32_t fake_sublayer_weight(void) { return sublayer_weight; }
API uint32_t fake_deleted_key(void) { return deleted_key.Data1; }
API uint32_t fake_filter_flags(void) { return filter_flags; }
API uint32_t fake_filter_weight(void) { return filter_weight_type << 8 | filter_weight; }
API uint32_t fake_filter_action(void) { return filter_action; }
API uint32_t fake_filter_conditions(void) { return filter_count; }
API uint64_t fake_luid_condition(void) { return luid_condition; }
API uint32_t fake_range(void) { return (uint32_t)range_low << 16 | range_high; }
API const char *fake_filter_name(void) { return filter_name; }
