/* A revision-2 plugin, as written before orders had a life: it knows only
 * the revision-2 prefix of tp_broker_order and fills half of every order,
 * answering PARTIALLY_FILLED (its rest canceled, as IOC). The loader must
 * adapt it: no terms but market IOC reach it, that answer becomes CANCELED
 * with the fill, and a cancel is answered from the query. Plain C. */
#include <dll_gateway/broker_abi.h>
#include <stdlib.h>
#include <string.h>

/* The revision-2 layout of an order: what this plugin was compiled against. */
typedef struct order_v2 {
  char client_order_id[TP_BROKER_ID_SIZE];
  char instrument[TP_BROKER_INSTRUMENT_SIZE];
  int32_t side;
  double quantity;
  double price_hint;
  int64_t sent_ts_ns;
  int64_t expires_ts_ns;
} order_v2;

struct tp_broker {
  char last_id[TP_BROKER_ID_SIZE];
  double last_filled;
  double bid;
};

TP_BROKER_EXPORT uint32_t tp_broker_abi_version(void) { return 2; }

TP_BROKER_EXPORT tp_broker* tp_broker_create(const char* const* keys, const char* const* values, size_t count,
                                             char* error, size_t error_len) {
  (void)keys, (void)values, (void)count, (void)error, (void)error_len;
  return (tp_broker*)calloc(1, sizeof(tp_broker));
}
TP_BROKER_EXPORT int tp_broker_submit(tp_broker* b, const tp_broker_order* order, tp_broker_result* r) {
  const order_v2* o = (const order_v2*)(const void*)order;
  memcpy(b->last_id, o->client_order_id, TP_BROKER_ID_SIZE);
  b->last_id[TP_BROKER_ID_SIZE - 1] = '\0';
  b->last_filled = o->quantity / 2;
  strcpy(r->order_id, "V2-1");
  r->status = TP_BROKER_STATUS_PARTIALLY_FILLED;
  r->filled_quantity = b->last_filled;
  r->fill_price = b->bid;
  return TP_BROKER_OK;
}
TP_BROKER_EXPORT int tp_broker_query(tp_broker* b, const char* id, tp_broker_result* r) {
  if (strcmp(id, b->last_id) != 0) {
    r->status = TP_BROKER_STATUS_UNKNOWN;
    return TP_BROKER_OK;
  }
  strcpy(r->order_id, "V2-1");
  r->status = TP_BROKER_STATUS_PARTIALLY_FILLED;
  r->filled_quantity = b->last_filled;
  r->fill_price = b->bid;
  return TP_BROKER_OK;
}
TP_BROKER_EXPORT int tp_broker_position(tp_broker* b, const char* instrument, double* q) {
  (void)instrument;
  *q = b->last_filled;
  return TP_BROKER_OK;
}
TP_BROKER_EXPORT void tp_broker_destroy(tp_broker* b) { free(b); }
TP_BROKER_EXPORT void tp_broker_on_quote(tp_broker* b, const char* instrument, double bid, double ask,
                                         int64_t ts_ns) {
  (void)instrument, (void)ask, (void)ts_ns;
  b->bid = bid;
}
