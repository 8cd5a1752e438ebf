/* A plugin of the right ABI version whose create always fails with a
 * message: the loader must report it, naming the plugin. Plain C. */
#include <dll_gateway/broker_abi.h>
#include <string.h>

TP_BROKER_EXPORT uint32_t tp_broker_abi_version(void) { return TP_BROKER_ABI_VERSION; }

TP_BROKER_EXPORT tp_broker* tp_broker_create(const char* const* keys, const char* const* values, size_t count,
                                             char* error, size_t error_len) {
  (void)keys, (void)values, (void)count;
  const char* msg = "cannot reach broker at fake://nowhere";
  if (error_len > 0) {
    strncpy(error, msg, error_len - 1);
    error[error_len - 1] = '\0';
  }
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
TP_BROKER_EXPORT int tp_broker_cancel(tp_broker* b, const char* id, tp_broker_result* r) {
  (void)b, (void)id, (void)r;
  return TP_BROKER_ERROR;
}
TP_BROKER_EXPORT size_t tp_broker_poll_reports(tp_broker* b, tp_broker_report* out, size_t max) {
  (void)b, (void)out, (void)max;
  return 0;
}
TP_BROKER_EXPORT int tp_broker_open_orders(tp_broker* b, tp_broker_report* out, size_t max, size_t* count) {
  (void)b, (void)out, (void)max, (void)count;
  return TP_BROKER_ERROR;
}
