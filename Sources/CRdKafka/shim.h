// The one header Swift imports for librdkafka.
//
// We compile against Debian's librdkafka-dev (2.0.2). Its run-time library
// cannot talk to Tansu (see RdKafkaLibrary.swift), so the Kafka module loads
// a newer librdkafka.so.1 at run time; the C ABI is stable across 2.x, so code
// built against the 2.0.2 header runs unchanged on 2.16. Only functions that
// exist in 2.0.2 can be used here, which is also why the version check is a
// run-time one (rd_kafka_version()), not the RD_KAFKA_VERSION macro.
#ifndef CRDKAFKA_SHIM_H
#define CRDKAFKA_SHIM_H

#include <librdkafka/rdkafka.h>

#endif
