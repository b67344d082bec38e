// The one header the Swift side imports. rabbitmq-c 0.11 as packaged by
// Debian 12 installs its headers at the top of /usr/include (`amqp.h`,
// `amqp_tcp_socket.h`); newer packagings move them to `rabbitmq-c/`. Prefer
// the new layout when it exists so the same target builds on both.
#ifndef CRABBITMQ_SHIM_H
#define CRABBITMQ_SHIM_H

#if __has_include(<rabbitmq-c/amqp.h>)
#include <rabbitmq-c/amqp.h>
#include <rabbitmq-c/framing.h>
#include <rabbitmq-c/tcp_socket.h>
#else
#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#endif

#include <stdint.h>

// `amqp_login_with_properties` is variadic (the SASL arguments follow
// `...`), and Swift cannot call C variadic functions. This fixed-arity
// wrapper picks PLAIN and passes user and password through.
static inline amqp_rpc_reply_t crabbitmq_login_plain(
    amqp_connection_state_t state, const char *vhost, int channel_max,
    int frame_max, int heartbeat, const amqp_table_t *client_properties,
    const char *user, const char *password) {
  return amqp_login_with_properties(state, vhost, channel_max, frame_max,
                                    heartbeat, client_properties,
                                    AMQP_SASL_METHOD_PLAIN, user, password);
}

// Method ids and property flags are macros with casts or shifts in them;
// Swift imports plain integer constants more reliably, so they are restated
// here as one enum of 32-bit values.
enum {
  CRABBITMQ_CONNECTION_CLOSE = AMQP_CONNECTION_CLOSE_METHOD,
  CRABBITMQ_CONNECTION_CLOSE_OK = AMQP_CONNECTION_CLOSE_OK_METHOD,
  CRABBITMQ_CONNECTION_BLOCKED = AMQP_CONNECTION_BLOCKED_METHOD,
  CRABBITMQ_CONNECTION_UNBLOCKED = AMQP_CONNECTION_UNBLOCKED_METHOD,
  CRABBITMQ_CHANNEL_CLOSE = AMQP_CHANNEL_CLOSE_METHOD,
  CRABBITMQ_CHANNEL_CLOSE_OK = AMQP_CHANNEL_CLOSE_OK_METHOD,
  CRABBITMQ_BASIC_DELIVER = AMQP_BASIC_DELIVER_METHOD,
  CRABBITMQ_BASIC_RETURN = AMQP_BASIC_RETURN_METHOD,
  CRABBITMQ_BASIC_ACK = AMQP_BASIC_ACK_METHOD,
  CRABBITMQ_BASIC_NACK = AMQP_BASIC_NACK_METHOD,
  CRABBITMQ_BASIC_CANCEL = AMQP_BASIC_CANCEL_METHOD,
  CRABBITMQ_BASIC_CANCEL_OK = AMQP_BASIC_CANCEL_OK_METHOD,
};

enum {
  CRABBITMQ_FLAG_CONTENT_TYPE = AMQP_BASIC_CONTENT_TYPE_FLAG,
  CRABBITMQ_FLAG_CONTENT_ENCODING = AMQP_BASIC_CONTENT_ENCODING_FLAG,
  CRABBITMQ_FLAG_HEADERS = AMQP_BASIC_HEADERS_FLAG,
  CRABBITMQ_FLAG_DELIVERY_MODE = AMQP_BASIC_DELIVERY_MODE_FLAG,
  CRABBITMQ_FLAG_PRIORITY = AMQP_BASIC_PRIORITY_FLAG,
  CRABBITMQ_FLAG_CORRELATION_ID = AMQP_BASIC_CORRELATION_ID_FLAG,
  CRABBITMQ_FLAG_REPLY_TO = AMQP_BASIC_REPLY_TO_FLAG,
  CRABBITMQ_FLAG_EXPIRATION = AMQP_BASIC_EXPIRATION_FLAG,
  CRABBITMQ_FLAG_MESSAGE_ID = AMQP_BASIC_MESSAGE_ID_FLAG,
  CRABBITMQ_FLAG_TIMESTAMP = AMQP_BASIC_TIMESTAMP_FLAG,
  CRABBITMQ_FLAG_TYPE = AMQP_BASIC_TYPE_FLAG,
  CRABBITMQ_FLAG_USER_ID = AMQP_BASIC_USER_ID_FLAG,
  CRABBITMQ_FLAG_APP_ID = AMQP_BASIC_APP_ID_FLAG,
};

#endif
