/*
 * A stand-in for wireguard.dll with its exported names and C conventions, built by
 * wireguard-nt-dll.test.ts so the koffi bindings are called for real on Linux. errno plays
 * GetLastError. The configuration is stored and returned as is (the driver's semantics are
 * modelled in wireguard-nt-fake.ts).
 */
#include <stdint.h>
#include <string.h>
#include <errno.h>
typedef struct { uint32_t Data1; uint16_t Data2, Data3; uint8_t Data4[8]; } GUID;
typedef int (*logger_t)(int, uint64_t, const uint16_t *);
static logger_t logger;
static uint8_t config[65536];
static uint32_t config_len;
static char last_name[256], last_type[256];
static GUID last_guid;
static int handle_obj, get_calls, close_calls, logging_state = -1;
static void to_ascii(const uint16_t *w, char *out) { while (*w) *out++ = (char)*w++; *out = 0; }
void *WireGuardCreateAdapter(const uint16_t *name, const uint16_t *type, const GUID *guid) {
  to_ascii(name, last_name); to_ascii(type, last_type); last_guid = *guid;
  if (strcmp(last_name, "fail") == 0) { errno = 5; return NULL; }
  static const uint16_t msg[] = {'c','r','e','a','t','e','d',0};
  if (logger) logger(1, 1, msg);
  return &handle_obj;
}
void *WireGuardOpenAdapter(const uint16_t *name) { errno = 2; return NULL; }
void WireGuardCloseAdapter(void *h) { if (h == &handle_obj) close_calls++; }
void WireGuardGetAdapterLUID(void *h, uint64_t *luid) { *luid = 0x35000001000000ULL; }
int WireGuardSetAdapterState(void *h, int s) { if (s != 0 && s != 1) { errno = 87; return 0; } return 1; }
int WireGuardSetAdapterLogging(void *h, int s) { logging_state = s; return 1; }
int WireGuardSetConfiguration(void *h, const void *cfg, uint32_t bytes) { memcpy(config, cfg, bytes); config_len = bytes; return 1; }
int WireGuardGetConfiguration(void *h, void *cfg, uint32_t *bytes) {
  get_calls++;
  if (*bytes < config_len) { *bytes = config_len; errno = 234; return 0; }
  memcpy(cfg, config, config_len); *bytes = config_len; return 1;
}
void WireGuardSetLogger(logger_t l) { logger = l; }
const char *fake_last_name(void) { return last_name; }
const char *fake_last_type(void) { return last_type; }
uint32_t fake_guid_data1(void) { return last_guid.Data1; }
uint8_t fake_guid_data4_7(void) { return last_guid.Data4[7]; }
int fake_get_calls(void) { return get_calls; }
int fake_close_calls(void) { return close_calls; }
int fake_logging_state(void) { return logging_state; }
