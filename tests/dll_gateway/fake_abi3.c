/* A revision-3 plugin that shows what the loader passes and checks: the
 * order's terms come back in the answer's reason, a tick's sizes and sequence
 * in a query's reason, 150 reports are queued for the poll (every 50th filled
 * in wrongly) and 100 orders are open (more than the loader first asks for).
 * Built a second time with FAKE_NO_CANCEL, lacking tp_broker_cancel, which a
 * revision-3 plugin must export. Plain C. */
#include <dll_gateway/broker_abi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAKE_REPORTS 150
#define FAKE_OPEN 100

struct tp_broker {
  tp_broker_quote last;
  size_t polled;
};

static void fill_report(tp_broker_report* r, size_t i, int32_t status) {
  memset(r, 0, sizeof *r);
  snprintf(r->client_order_id, sizeof r->client_order_id, "R-%zu", i);
  snprintf(r->order_id, sizeof r->order_id, "F-%zu", i);
  r->status = status;
  r->last_quantity = 1;
  r->last_price = 1.5;
  r->filled_quantity = 1;
  r->avg_price = 1.5;
  r->quote_seq = i;
}

TP_BROKER_EXPORT uint32_t tp_broker_abi_version(void) { return 3; }

TP_BROKER_EXPORT tp_broker* tp_broker_create(const char* const* keys, const char* const* values, size_t count,
                                             char* error, size_t error_len) {
  (void)keys, (void)values, (void)count, (void)error, (void)error_len;
  return (tp_broker*)calloc(1, sizeof(tp_broker));
}
TP_BROKER_EXPORT int tp_broker_submit(tp_broker* b, const tp_broker_order* o, tp_broker_result* r) {
  (void)b;
  r->status = TP_BROKER_STATUS_ACCEPTED;
  snprintf(r->reason, sizeof r->reason, "type=%d limit=%g tif=%d till=%lld", (int)o->order_type,
           o->limit_price, (int)o->time_in_force, (long long)o->good_till_ns);
  return TP_BROKER_OK;
}
TP_BROKER_EXPORT int tp_broker_query(tp_broker* b, const char* id, tp_broker_result* r) {
  (void)id;
  r->status = TP_BROKER_STATUS_ACCEPTED;
  snprintf(r->reason, sizeof r->reason, "%s %g/%g sizes %g/%g ts %lld seq %llu", b->last.instrument,
           b->last.bid, b->last.ask, b->last.bid_volume, b->last.ask_volume, (long long)b->last.ts_ns,
           (unsigned long long)b->last.seq);
  return TP_BROKER_OK;
}
TP_BROKER_EXPORT int tp_broker_position(tp_broker* b, const char* instrument, double* q) {
  (void)b, (void)instrument;
  *q = 0;
  return TP_BROKER_OK;
}
#ifndef FAKE_NO_CANCEL
TP_BROKER_EXPORT int tp_broker_cancel(tp_broker* b, const char* id, tp_broker_result* r) {
  (void)b, (void)id;
  r->status = TP_BROKER_STATUS_CANCELED;
  strcpy(r->reason, "canceled by the fake");
  return TP_BROKER_OK;
}
#endif
TP_BROKER_EXPORT size_t tp_broker_poll_reports(tp_broker* b, tp_broker_report* out, size_t max) {
  size_t n = 0;
  for (; n < max && b->polled < FAKE_REPORTS; ++n, ++b->polled)
    fill_report(&out[n], b->polled, b->polled % 50 == 49 ? 99 : TP_BROKER_STATUS_PARTIALLY_FILLED);
  return n;
}
TP_BROKER_EXPORT int tp_broker_open_orders(tp_broker* b, tp_broker_report* out, size_t max, size_t* count) {
  (void)b;
  for (size_t i = 0; i < max && i < FAKE_OPEN; ++i) fill_report(&out[i], i, TP_BROKER_STATUS_ACCEPTED);
  *count = FAKE_OPEN;
  return TP_BROKER_OK;
}
TP_BROKER_EXPORT void tp_broker_destroy(tp_broker* b) { free(b); }
TP_BROKER_EXPORT void tp_broker_on_tick(tp_broker* b, const tp_broker_quote* q) { b->last = *q; }
