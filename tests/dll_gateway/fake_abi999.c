/* A plugin built for another ABI version: the loader must refuse it before
 * calling anything else. Written in C to prove broker_abi.h is plain C. */
#include <dll_gateway/broker_abi.h>

TP_BROKER_EXPORT uint32_t tp_broker_abi_version(void) { return 999; }

TP_BROKER_EXPORT tp_broker* tp_broker_create(const char* const* keys, const char* const* values, size_t count,
                                             char* error, size_t error_len) {
  (void)keys, (void)values, (void)count, (void)error, (void)error_len;
  return (tp_broker*)0;
}
TP_BROKER_EXPORT int tp_broker_submit(tp_broker* b, const tp_broker_order* o, tp_broker_result* r) {
  (void)b, (void)o, (void)r;
  return TP_BROKER_ERROR;
}
TP_BROKER_EXPORT int tp_broker_query(tp_broker* b, const char* id, tp_broker_result* r) {
  (void)b, (void)id, (void)r;
  return TP_BROKER_ERROR;
}
TP_BROKER_EXPORT int tp_broker_position(tp_broker* b, const char* instrument, double* q) {
  (void)b, (void)instrument, (void)q;
  return TP_BROKER_ERROR;
}
TP_BROKER_EXPORT void tp_broker_destroy(tp_broker* b) { (void)b; }
