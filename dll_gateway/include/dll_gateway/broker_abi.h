/* The broker plugin ABI: what a shared library must export so that
 * dll_gateway can load it with dlopen() and route orders to it. Pure C, so a
 * plugin can be written in C, C++ or anything that exports C symbols, and
 * built without the pipeline's sources; only this header is needed.
 *
 * Versioning: a plugin returns TP_BROKER_ABI_VERSION from
 * tp_broker_abi_version(); the loader refuses any number it does not know.
 * Any change to a struct layout or a function signature bumps the version.
 * Revision 2 appended tp_broker_order.expires_ts_ns; the loader still takes
 * revision 1 plugins (they read the unchanged prefix of the struct and never
 * see the deadline, which dll_gateway then enforces alone).
 * Revision 3 gives orders a life: tp_broker_order gained the order's terms
 * (type, limit price, time in force, good-till time), and a plugin exports
 * tp_broker_cancel, tp_broker_poll_reports and tp_broker_open_orders (and,
 * optionally, tp_broker_on_tick instead of tp_broker_on_quote). An order may
 * now rest: submit answers at once (ACCEPTED, or the part filled so far), and
 * what happens to a resting order later arrives as reports that dll_gateway
 * polls. Revision 1 and 2 plugins are still loaded and adapted: they take
 * market IOC orders only (dll_gateway refuses any other terms before the
 * plugin sees them, naming the revision), a PARTIALLY_FILLED answer of theirs
 * is final (the rest was canceled) and becomes CANCELED with the fill kept,
 * and a cancel is answered from the order's stored final status. A plugin
 * that declares revision 3 must export tp_broker_cancel,
 * tp_broker_poll_reports and tp_broker_open_orders: without one of them it
 * is refused at load, naming the missing symbol.
 *
 * An order's life, as dll_gateway sees it (the states and their arrows:
 * proto/include/proto/order_lifecycle.hpp and docs/PROTOCOL.md, "The order
 * model"):
 *   submit  -> FILLED, CANCELED (IOC rest), REJECTED: final at once;
 *              ACCEPTED or PARTIALLY_FILLED: the order rests;
 *   then, from tp_broker_poll_reports only: PARTIALLY_FILLED (more filled),
 *              FILLED, EXPIRED, CANCELED (by the broker itself);
 *   cancel  -> CANCELED, or the final status it had reached first.
 * PARTIALLY_FILLED always means "still resting": an IOC order that part
 * filled ends CANCELED with its filled_quantity. Every quantity the plugin
 * gives is cumulative over the order's whole life (as FIX's CumQty), so the
 * same change told twice (in the submit's answer and again in a report, in
 * a report and a query) is harmless: dll_gateway applies the increase over
 * what it has stored, through one state machine, and counts what no arrow
 * allows (less filled than before, FILLED then ACCEPTED: invalid_transitions)
 * or what is older than it knows (reports_stale) without applying it. What
 * must never happen is a status or quantity going backwards for one order.
 * Each change dll_gateway learns becomes a numbered, stored execution report
 * of its own; a plugin never numbers anything.
 *
 * What a crash costs, and what the plugin must make possible: reports that
 * tp_broker_poll_reports handed over belong to dll_gateway, which stores them
 * at once; a report lost in a crash in between is recovered at the next
 * start, when dll_gateway asks tp_broker_query about every order it holds
 * open and tp_broker_open_orders for the whole book. So query must answer the
 * order's latest cumulative state (also after the plugin itself restarted),
 * and open_orders must list every order resting for this account: an order
 * listed there that dll_gateway never sent is reported, and the executor
 * stops trading until a person settles it (fail closed: open_orders_mismatch).
 *
 * Threading: dll_gateway calls every function of one tp_broker instance from
 * ONE thread, one call at a time. A plugin needs no locking unless it starts
 * threads of its own. Calls may block (a synchronous broker API); the
 * gateway's loop waits for them, so tp_broker_poll_reports,
 * tp_broker_on_tick and tp_broker_on_quote should return at once: a plugin
 * whose broker calls back on its own thread queues those events under its
 * own lock and hands them over at the next poll.
 *
 * Ownership: the loader owns every buffer it passes in (valid only during the
 * call: copy what you keep) and every result struct (the plugin fills it).
 * The plugin owns its tp_broker instance from create until destroy.
 *
 * Strings are NUL-terminated UTF-8. Fixed-size char arrays hold at most
 * SIZE - 1 characters plus the terminating NUL; a plugin must always
 * terminate them.
 */
#ifndef TP_DLL_GATEWAY_BROKER_ABI_H
#define TP_DLL_GATEWAY_BROKER_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TP_BROKER_ABI_VERSION 3
#define TP_BROKER_ABI_OLDEST_VERSION 1 /* still loaded: see Versioning */

/* Array sizes, including the terminating NUL (ids and instruments match the
 * wire protocol's limits: 128 and 32 characters). */
#define TP_BROKER_ID_SIZE 129
#define TP_BROKER_INSTRUMENT_SIZE 33
#define TP_BROKER_REASON_SIZE 256

/* Return codes of tp_broker_submit/query/position. */
#define TP_BROKER_OK 0
#define TP_BROKER_ERROR 1 /* the call failed; see the function for meaning */

/* Sides (numbers as proto::Side). */
#define TP_BROKER_SIDE_BUY 1
#define TP_BROKER_SIDE_SELL 2

/* Order statuses (numbers as proto::OrderStatus). */
#define TP_BROKER_STATUS_NEW 1
#define TP_BROKER_STATUS_ACCEPTED 2
#define TP_BROKER_STATUS_PARTIALLY_FILLED 3
#define TP_BROKER_STATUS_FILLED 4
#define TP_BROKER_STATUS_REJECTED 5
#define TP_BROKER_STATUS_CANCELED 6
#define TP_BROKER_STATUS_UNKNOWN 7 /* query and cancel only: the broker never saw this id */
#define TP_BROKER_STATUS_EXPIRED 8 /* since revision 3: a GTD order's good-till time passed */

/* Order types and times in force (since revision 3; numbers as
 * proto::OrderType and proto::TimeInForce). */
#define TP_BROKER_TYPE_MARKET 0
#define TP_BROKER_TYPE_LIMIT 1
#define TP_BROKER_TIF_IOC 0 /* fill what can be filled now, cancel the rest */
#define TP_BROKER_TIF_GTC 1 /* rest until filled or canceled */
#define TP_BROKER_TIF_GTD 2 /* rest until good_till_ns, then EXPIRED */

/* Marks the functions a plugin exports (plugins are best built with
 * -fvisibility=hidden so that only these are visible). */
#if defined(__GNUC__)
#define TP_BROKER_EXPORT __attribute__((visibility("default")))
#else
#define TP_BROKER_EXPORT
#endif

/* Opaque broker instance, defined by the plugin. */
typedef struct tp_broker tp_broker;

/* An order. */
typedef struct tp_broker_order {
  char client_order_id[TP_BROKER_ID_SIZE]; /* unique per order; the dedupe key */
  char instrument[TP_BROKER_INSTRUMENT_SIZE];
  int32_t side;       /* TP_BROKER_SIDE_* */
  double quantity;    /* > 0, finite */
  double price_hint;  /* the signal's trigger price, >= 0; market orders may ignore it */
  int64_t sent_ts_ns; /* when the executor sent it, ns since the Unix epoch */
  /* Since revision 2. The good-till time: the order must not be placed at or
   * after it (ns since the Unix epoch, the broker's clock); 0 = none. A plugin
   * for a real broker passes it on as the order's expiry (e.g. FIX
   * ExpireTime with TimeInForce GTD) and refuses the order (status REJECTED,
   * reason "expired: ...") when the time has already passed. dll_gateway has
   * checked it just before the call. */
  int64_t expires_ts_ns;
  /* Since revision 3. A MARKET order is always IOC with limit_price 0. A
   * LIMIT order buys at limit_price or lower (sells at it or higher); IOC
   * fills what it can at once and cancels the rest, GTC rests until filled or
   * canceled, GTD rests until good_till_ns (ns since the Unix epoch), then
   * expires. dll_gateway has checked the combination (proto check_terms). */
  int32_t order_type;    /* TP_BROKER_TYPE_* */
  double limit_price;    /* LIMIT: > 0; MARKET: 0 */
  int32_t time_in_force; /* TP_BROKER_TIF_* */
  int64_t good_till_ns;  /* GTD: > 0; else 0 */
} tp_broker_order;

/* The broker's answer about one order: its state after the call.
 * Quantities are cumulative over the order's life. */
typedef struct tp_broker_result {
  char order_id[TP_BROKER_ID_SIZE];   /* broker's id; empty when rejected before placement */
  int32_t status;                     /* TP_BROKER_STATUS_* */
  double filled_quantity;             /* >= 0, finite; the whole order's so far */
  double fill_price;                  /* average fill price, >= 0, finite; 0 when nothing filled */
  char reason[TP_BROKER_REASON_SIZE]; /* why rejected/canceled, or an error message */
  int64_t broker_ts_ns;               /* when the broker decided, ns since the Unix epoch */
} tp_broker_result;

/* Since revision 3: one change of a resting order that happened after the
 * call that placed it (a fill matched on a later quote, an expiry, a cancel
 * by the broker itself), or an open order's state (tp_broker_open_orders). */
typedef struct tp_broker_report {
  char client_order_id[TP_BROKER_ID_SIZE];
  char order_id[TP_BROKER_ID_SIZE];
  int32_t status;         /* the order's status after this change */
  double last_quantity;   /* filled by this change; 0 when none */
  double last_price;      /* its price; 0 when none */
  double filled_quantity; /* cumulative */
  double avg_price;       /* of filled_quantity; 0 when none */
  char reason[TP_BROKER_REASON_SIZE];
  int64_t broker_ts_ns; /* when it happened */
  uint64_t quote_seq;   /* the tick a simulated fill matched (tp_broker_quote.seq); 0: none */
  int64_t quote_ts_ns;  /* that tick's ts_ns; 0: none */
} tp_broker_report;

/* Since revision 3: a quote with its sizes (tp_broker_on_tick). */
typedef struct tp_broker_quote {
  char instrument[TP_BROKER_INSTRUMENT_SIZE];
  double bid;
  double ask;        /* >= bid */
  double bid_volume; /* displayed sizes, >= 0; 0 = not known */
  double ask_volume;
  int64_t ts_ns; /* when the pipeline's gateway published it */
  uint64_t seq;  /* the gateway's per-instrument sequence number */
} tp_broker_quote;

/* Returns TP_BROKER_ABI_VERSION as compiled into the plugin. Called first;
 * must not fail or allocate. */
typedef uint32_t (*tp_broker_abi_version_fn)(void);
TP_BROKER_EXPORT uint32_t tp_broker_abi_version(void);

/* Creates a broker instance from `count` settings (keys[i] = values[i], all
 * strings, owned by the caller, valid during the call only). On failure
 * returns NULL and writes a one-line message (NUL-terminated, at most
 * error_len bytes including the NUL) into `error` that names the offending
 * key or the problem; a plugin should refuse keys it does not know. */
typedef tp_broker* (*tp_broker_create_fn)(const char* const* keys, const char* const* values, size_t count,
                                          char* error, size_t error_len);
TP_BROKER_EXPORT tp_broker* tp_broker_create(const char* const* keys, const char* const* values, size_t count,
                                             char* error, size_t error_len);

/* Places an order and waits for the broker's immediate answer, which it
 * writes to `*result` (zero-initialised by the caller): FILLED, CANCELED (an
 * IOC order's unfilled rest; filled_quantity says what did fill), ACCEPTED
 * (resting, nothing filled yet), PARTIALLY_FILLED (resting, part filled) or
 * REJECTED. What happens to a resting order afterwards comes from
 * tp_broker_poll_reports, never again from this call. A refused order is an answer:
 * TP_BROKER_OK with status REJECTED and a reason, which should start with a
 * short kind and a colon ("stale quote: ...", "insufficient margin: ..."):
 * dll_gateway counts rejects by that kind (rejects_by_reason in its stats).
 * An id that is still resting must not be placed twice: answer REJECTED, as
 * venues refuse a live duplicate ClOrdID. Returns TP_BROKER_ERROR only
 * when the outcome is unknown (e.g. the connection dropped after sending); the
 * gateway then keeps the order pending and asks tp_broker_query before it
 * would ever submit that client_order_id again. The gateway never submits an
 * id it already has an answer for, but a plugin must not assume the broker
 * deduplicates either. */
typedef int (*tp_broker_submit_fn)(tp_broker* broker, const tp_broker_order* order, tp_broker_result* result);
TP_BROKER_EXPORT int tp_broker_submit(tp_broker* broker, const tp_broker_order* order,
                                      tp_broker_result* result);

/* Writes what the broker knows about `client_order_id` to `*result`: its
 * latest status, or status UNKNOWN when the broker never saw the id (a normal
 * answer, TP_BROKER_OK). Returns TP_BROKER_ERROR when the broker could not be
 * asked (reason may say why). Must survive restarts of the plugin the way the
 * real broker does: the gateway relies on it after a crash. */
typedef int (*tp_broker_query_fn)(tp_broker* broker, const char* client_order_id, tp_broker_result* result);
TP_BROKER_EXPORT int tp_broker_query(tp_broker* broker, const char* client_order_id,
                                     tp_broker_result* result);

/* Writes the broker's net position in `instrument` (positive long) to
 * `*quantity`: every fill so far, resting orders' fills included (the
 * executor compares it with its own book at start). Returns TP_BROKER_ERROR
 * when unavailable. */
typedef int (*tp_broker_position_fn)(tp_broker* broker, const char* instrument, double* quantity);
TP_BROKER_EXPORT int tp_broker_position(tp_broker* broker, const char* instrument, double* quantity);

/* Since revision 3. Cancels the resting order `client_order_id` and writes
 * its state after the attempt to `*result`: CANCELED (filled_quantity keeps
 * what had filled), or the final status it had already reached (FILLED,
 * EXPIRED...; reason says why it could not be canceled), or UNKNOWN when the
 * broker never saw the id. All are answers (TP_BROKER_OK); TP_BROKER_ERROR
 * means the outcome is unknown: dll_gateway keeps the cancel pending and
 * settles it with tp_broker_query, never by a second cancel. dll_gateway
 * sends one cancel per order at most; the change a cancel answered is not
 * repeated as a report (if it is, being cumulative, it changes nothing).
 * A fill that wins the race is the answer: FILLED, "cannot cancel: ...". */
typedef int (*tp_broker_cancel_fn)(tp_broker* broker, const char* client_order_id, tp_broker_result* result);
TP_BROKER_EXPORT int tp_broker_cancel(tp_broker* broker, const char* client_order_id,
                                      tp_broker_result* result);

/* Since revision 3. Moves up to `max` reports of changes that happened since
 * the last poll (oldest first) into `out` and returns how many; the rest
 * stay queued for the next poll. dll_gateway polls after every call and
 * tick, and at least every 10 ms, and stores each report before it tells
 * anyone. Time-driven changes (a GTD order's expiry) are made by the poll
 * itself when due. Each report is the order's whole state after one change
 * (status, cumulative filled_quantity and avg_price), plus last_quantity and
 * last_price, this change's own fill, kept for audit (dll_gateway derives the
 * fill it books from the cumulative difference). Reports of one order come
 * in the order the changes happened. A report must name an order dll_gateway
 * submitted (others are logged and counted, reports_unknown_order, not
 * stored); a report with a status out of range, UNKNOWN, a negative or
 * non-finite number or an empty client_order_id is dropped. Hold a report
 * that does not fit in `max` for the next poll; never drop one. */
typedef size_t (*tp_broker_poll_reports_fn)(tp_broker* broker, tp_broker_report* out, size_t max);
TP_BROKER_EXPORT size_t tp_broker_poll_reports(tp_broker* broker, tp_broker_report* out, size_t max);

/* Since revision 3. Writes the current state of up to `max` open (resting)
 * orders into `out`, oldest first, and their total number to `*count` (more
 * than `max`: call again with room for all). Reconciliation after a restart
 * uses it. Each entry is the order's current state (status ACCEPTED or
 * PARTIALLY_FILLED, cumulative filled_quantity and avg_price; last_quantity
 * and last_price 0). Returns TP_BROKER_ERROR when the broker could not be
 * asked: nothing is settled then, and the executor asks again later. */
typedef int (*tp_broker_open_orders_fn)(tp_broker* broker, tp_broker_report* out, size_t max, size_t* count);
TP_BROKER_EXPORT int tp_broker_open_orders(tp_broker* broker, tp_broker_report* out, size_t max,
                                           size_t* count);

/* Frees the instance and everything it owns (flushes journals, closes
 * connections). `broker` may be NULL. */
typedef void (*tp_broker_destroy_fn)(tp_broker* broker);
TP_BROKER_EXPORT void tp_broker_destroy(tp_broker* broker);

/* OPTIONAL: market data for plugins that price orders themselves (the
 * simulator). Called for every tick the gateway receives, bid <= ask,
 * ts_ns = when the pipeline's gateway published it. A plugin that does not
 * need quotes simply does not export it. Must be cheap: it runs on the
 * gateway's loop. */
typedef void (*tp_broker_on_quote_fn)(tp_broker* broker, const char* instrument, double bid, double ask,
                                      int64_t ts_ns);
TP_BROKER_EXPORT void tp_broker_on_quote(tp_broker* broker, const char* instrument, double bid, double ask,
                                         int64_t ts_ns);

/* OPTIONAL, since revision 3: as tp_broker_on_quote, with the displayed
 * sizes and the tick's sequence number (a simulated fill names the tick it
 * matched). A plugin exporting it is not also given tp_broker_on_quote. */
typedef void (*tp_broker_on_tick_fn)(tp_broker* broker, const tp_broker_quote* quote);
TP_BROKER_EXPORT void tp_broker_on_tick(tp_broker* broker, const tp_broker_quote* quote);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* TP_DLL_GATEWAY_BROKER_ABI_H */
