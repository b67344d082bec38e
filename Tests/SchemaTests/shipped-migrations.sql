-- The text of every migration the project has shipped (Tests/SchemaTests).
-- Never edit an entry: a change of schema is a new migration, appended here
-- by SHIP_MIGRATIONS=1 swift test --filter SchemaTests.

-- migration: accounts v1
-- Times are integer milliseconds since 1970, UTC. Users are keyed by a
-- text id and never listed, so the table is its own primary-key index.
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL,
    emailKey TEXT NOT NULL UNIQUE,          -- lowercased: emails compare case-insensitively
    name TEXT NOT NULL,
    passwordHash TEXT NOT NULL,
    role TEXT NOT NULL,
    createdAt INTEGER NOT NULL
) WITHOUT ROWID;

-- migration: catalogue v1
-- Times are integer milliseconds since 1970, UTC. Listed in creation
-- order, so the rowid breaks ties between equal times.
CREATE TABLE products (
    id TEXT PRIMARY KEY,
    sku TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    priceCents INTEGER NOT NULL CHECK (priceCents > 0),
    createdAt INTEGER NOT NULL,
    updatedAt INTEGER NOT NULL
);

-- migration: checkout v1
-- Times (createdAt, updatedAt) are integer milliseconds since 1970, UTC.
-- Tables keyed by a text id are WITHOUT ROWID unless they are listed
-- newest first (orders and notifications use the rowid to break ties
-- between equal times). Without a rowid the table *is* its primary-key
-- index: one b-tree page written per insert instead of two.

-- The CHECKs are the last line of defence against overselling: even a
-- bug in the code cannot drive stock below zero.
CREATE TABLE inventory (
    productId TEXT PRIMARY KEY,
    available INTEGER NOT NULL CHECK (available >= 0),
    reserved INTEGER NOT NULL CHECK (reserved >= 0)
) WITHOUT ROWID;

CREATE TABLE orders (
    id TEXT PRIMARY KEY,
    userId TEXT NOT NULL,
    status TEXT NOT NULL,
    cancelReason TEXT,
    totalCents INTEGER NOT NULL,
    paymentStatus TEXT NOT NULL,
    chargedCents INTEGER NOT NULL,
    refundedCents INTEGER NOT NULL,
    cardLast4 TEXT NOT NULL,
    -- The card is kept only while its charge is undecided, so that a
    -- restart can finish the charge of an order caught mid-request.
    pendingCard TEXT,
    customerEmail TEXT NOT NULL,
    customerName TEXT NOT NULL,
    idempotencyKey TEXT,
    requestFingerprint TEXT NOT NULL,
    createdAt INTEGER NOT NULL,
    updatedAt INTEGER NOT NULL,
    UNIQUE (userId, idempotencyKey)
);
CREATE INDEX orders_by_user ON orders(userId, createdAt);
CREATE INDEX orders_with_pending_charge ON orders(pendingCard) WHERE pendingCard IS NOT NULL;
CREATE TABLE order_items (
    orderId TEXT NOT NULL REFERENCES orders(id),
    line INTEGER NOT NULL,
    productId TEXT NOT NULL,
    sku TEXT NOT NULL,
    name TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    unitPriceCents INTEGER NOT NULL,
    lineTotalCents INTEGER NOT NULL,
    PRIMARY KEY (orderId, line)
) WITHOUT ROWID;

-- One row per money movement. UNIQUE(orderId, kind): an order is
-- charged at most once and refunded at most once, whatever retries
-- or redelivers it.
CREATE TABLE payments (
    id TEXT PRIMARY KEY,
    orderId TEXT NOT NULL REFERENCES orders(id),
    kind TEXT NOT NULL,                     -- charge | refund
    outcome TEXT NOT NULL,                  -- captured | declined | refunded
    amountCents INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    createdAt INTEGER NOT NULL,
    UNIQUE (orderId, kind)
) WITHOUT ROWID;

CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    userId TEXT NOT NULL,
    kind TEXT NOT NULL,
    orderId TEXT,
    channel TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    createdAt INTEGER NOT NULL
);
-- Exactly one notification of a kind per order (per user for welcome).
CREATE UNIQUE INDEX one_notification_per_kind ON notifications(userId, kind, ifnull(orderId, ''));

CREATE TABLE invoices (
    orderId TEXT PRIMARY KEY REFERENCES orders(id),
    number INTEGER NOT NULL UNIQUE,
    html TEXT NOT NULL,
    createdAt INTEGER NOT NULL
) WITHOUT ROWID;

-- migration: checkout v2: a partial idempotency index, invoices with a rowid
-- Most orders come without an Idempotency-Key, and v1's UNIQUE
-- constraint gave each of them an index entry that only cost a page
-- write; a partial index holds only the orders that have a key. A
-- table constraint cannot be dropped, so the table is rebuilt (the
-- rowid is copied: it orders orders created in the same millisecond).
CREATE TABLE orders_v2 (
    id TEXT PRIMARY KEY,
    userId TEXT NOT NULL,
    status TEXT NOT NULL,
    cancelReason TEXT,
    totalCents INTEGER NOT NULL,
    paymentStatus TEXT NOT NULL,
    chargedCents INTEGER NOT NULL,
    refundedCents INTEGER NOT NULL,
    cardLast4 TEXT NOT NULL,
    pendingCard TEXT,
    customerEmail TEXT NOT NULL,
    customerName TEXT NOT NULL,
    idempotencyKey TEXT,
    requestFingerprint TEXT NOT NULL,
    createdAt INTEGER NOT NULL,
    updatedAt INTEGER NOT NULL
);
INSERT INTO orders_v2 (rowid, id, userId, status, cancelReason, totalCents, paymentStatus, chargedCents,
    refundedCents, cardLast4, pendingCard, customerEmail, customerName, idempotencyKey, requestFingerprint,
    createdAt, updatedAt)
SELECT rowid, id, userId, status, cancelReason, totalCents, paymentStatus, chargedCents,
    refundedCents, cardLast4, pendingCard, customerEmail, customerName, idempotencyKey, requestFingerprint,
    createdAt, updatedAt FROM orders;
DROP TABLE orders;
ALTER TABLE orders_v2 RENAME TO orders;
CREATE UNIQUE INDEX orders_by_idempotency_key ON orders(userId, idempotencyKey) WHERE idempotencyKey IS NOT NULL;
CREATE INDEX orders_by_user ON orders(userId, createdAt);
CREATE INDEX orders_with_pending_charge ON orders(pendingCard) WHERE pendingCard IS NOT NULL;

-- An invoice is about a kilobyte of HTML, and SQLite's WITHOUT ROWID
-- b-trees are meant for small rows; a rowid table appends large rows
-- cheaply at its end.
CREATE TABLE invoices_v2 (
    orderId TEXT PRIMARY KEY REFERENCES orders(id),
    number INTEGER NOT NULL UNIQUE,
    html TEXT NOT NULL,
    createdAt INTEGER NOT NULL
);
INSERT INTO invoices_v2 (orderId, number, html, createdAt) SELECT orderId, number, html, createdAt FROM invoices;
DROP TABLE invoices;
ALTER TABLE invoices_v2 RENAME TO invoices;

-- migration: messaging v1
-- Sent in `seq` order, then deleted. The order matters: a consumer
-- sees an order's messages in the order the service wrote them.
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    messageId TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    body BLOB NOT NULL,
    correlationId TEXT,
    createdAt INTEGER NOT NULL
);
CREATE TABLE processed_messages (
    messageId TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    processedAt INTEGER NOT NULL
) WITHOUT ROWID;

-- migration: messaging v2: processed ids by time
CREATE INDEX processed_messages_by_time ON processed_messages(processedAt)

-- migration: dead letters v1
-- The message as it arrived (body and properties), so a replay sends
-- exactly that back; and why it was set aside.
CREATE TABLE dead_letters (
    id TEXT PRIMARY KEY,
    queue TEXT NOT NULL,
    messageId TEXT,
    messageType TEXT,
    reason TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    deadLetteredAt INTEGER NOT NULL,
    body BLOB NOT NULL,
    headers TEXT NOT NULL,        -- JSON of the headers a replay keeps
    replayedAt INTEGER            -- set when sent back; then no longer listed
);
CREATE INDEX dead_letters_listed ON dead_letters(deadLetteredAt) WHERE replayedAt IS NULL;

-- migration: inventory v1
-- The CHECKs are the last line of defence against overselling: even a
-- bug in the code cannot drive stock below zero.
CREATE TABLE inventory (
    productId TEXT PRIMARY KEY,
    available INTEGER NOT NULL CHECK (available >= 0),
    reserved INTEGER NOT NULL CHECK (reserved >= 0)
) WITHOUT ROWID;
-- What each order holds, so that confirming or releasing it later
-- moves exactly these units, once. state: reserved → sold | released;
-- sold → returned (a confirmed order cancelled); rejected (out of stock).
CREATE TABLE reservations (
    orderId TEXT NOT NULL,
    productId TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (orderId, productId)
) WITHOUT ROWID;

-- migration: notifications v1
CREATE TABLE notifications (
    id TEXT PRIMARY KEY,
    userId TEXT NOT NULL,
    kind TEXT NOT NULL,
    orderId TEXT,
    channel TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    createdAt INTEGER NOT NULL
);
-- Exactly one notification of a kind per order (per user for welcome).
CREATE UNIQUE INDEX one_notification_per_kind ON notifications(userId, kind, ifnull(orderId, ''));
CREATE TABLE recipients (
    orderId TEXT PRIMARY KEY,
    userId TEXT NOT NULL,
    email TEXT NOT NULL,
    name TEXT NOT NULL
) WITHOUT ROWID;

-- migration: payments v1
-- One row per money movement. UNIQUE(orderId, kind): an order is
-- charged at most once and refunded at most once, whatever retries
-- or redelivers it.
CREATE TABLE payments (
    id TEXT PRIMARY KEY,
    orderId TEXT NOT NULL,
    kind TEXT NOT NULL,                     -- charge | refund
    outcome TEXT NOT NULL,                  -- captured | declined | refunded
    amountCents INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    createdAt INTEGER NOT NULL,
    UNIQUE (orderId, kind)
) WITHOUT ROWID;

-- migration: orders v1
CREATE TABLE orders (
    id TEXT PRIMARY KEY,
    userId TEXT NOT NULL,
    status TEXT NOT NULL,
    cancelReason TEXT,
    totalCents INTEGER NOT NULL,
    paymentStatus TEXT NOT NULL,
    chargedCents INTEGER NOT NULL,
    refundedCents INTEGER NOT NULL,
    cardLast4 TEXT NOT NULL,
    pendingCard TEXT,
    customerEmail TEXT NOT NULL,
    customerName TEXT NOT NULL,
    idempotencyKey TEXT,
    requestFingerprint TEXT NOT NULL,
    createdAt INTEGER NOT NULL,
    updatedAt INTEGER NOT NULL,
    UNIQUE (userId, idempotencyKey)
);
CREATE INDEX orders_by_user ON orders(userId, createdAt);
CREATE INDEX orders_with_pending_charge ON orders(pendingCard) WHERE pendingCard IS NOT NULL;
CREATE TABLE order_items (
    orderId TEXT NOT NULL REFERENCES orders(id),
    line INTEGER NOT NULL,
    productId TEXT NOT NULL,
    sku TEXT NOT NULL,
    name TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    unitPriceCents INTEGER NOT NULL,
    lineTotalCents INTEGER NOT NULL,
    PRIMARY KEY (orderId, line)
) WITHOUT ROWID;
CREATE TABLE invoices (
    orderId TEXT PRIMARY KEY REFERENCES orders(id),
    number INTEGER NOT NULL UNIQUE,
    html TEXT NOT NULL,
    createdAt INTEGER NOT NULL
) WITHOUT ROWID;
ALTER TABLE orders ADD COLUMN stockOutcome TEXT;
ALTER TABLE orders ADD COLUMN paymentOutcome TEXT;
ALTER TABLE orders ADD COLUMN cancelRequested INTEGER NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN cancelling TEXT;
ALTER TABLE orders ADD COLUMN awaitingRefund INTEGER NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN awaitingRelease INTEGER NOT NULL DEFAULT 0;

-- migration: orders v2: a partial idempotency index, invoices with a rowid
CREATE TABLE orders_v2 (
    id TEXT PRIMARY KEY,
    userId TEXT NOT NULL,
    status TEXT NOT NULL,
    cancelReason TEXT,
    totalCents INTEGER NOT NULL,
    paymentStatus TEXT NOT NULL,
    chargedCents INTEGER NOT NULL,
    refundedCents INTEGER NOT NULL,
    cardLast4 TEXT NOT NULL,
    pendingCard TEXT,
    customerEmail TEXT NOT NULL,
    customerName TEXT NOT NULL,
    idempotencyKey TEXT,
    requestFingerprint TEXT NOT NULL,
    createdAt INTEGER NOT NULL,
    updatedAt INTEGER NOT NULL,
    stockOutcome TEXT,
    paymentOutcome TEXT,
    cancelRequested INTEGER NOT NULL DEFAULT 0,
    cancelling TEXT,
    awaitingRefund INTEGER NOT NULL DEFAULT 0,
    awaitingRelease INTEGER NOT NULL DEFAULT 0
);
INSERT INTO orders_v2 (rowid, id, userId, status, cancelReason, totalCents, paymentStatus, chargedCents,
    refundedCents, cardLast4, pendingCard, customerEmail, customerName, idempotencyKey, requestFingerprint,
    createdAt, updatedAt, stockOutcome, paymentOutcome, cancelRequested, cancelling, awaitingRefund, awaitingRelease)
SELECT rowid, id, userId, status, cancelReason, totalCents, paymentStatus, chargedCents,
    refundedCents, cardLast4, pendingCard, customerEmail, customerName, idempotencyKey, requestFingerprint,
    createdAt, updatedAt, stockOutcome, paymentOutcome, cancelRequested, cancelling, awaitingRefund, awaitingRelease
FROM orders;
DROP TABLE orders;
ALTER TABLE orders_v2 RENAME TO orders;
CREATE UNIQUE INDEX orders_by_idempotency_key ON orders(userId, idempotencyKey) WHERE idempotencyKey IS NOT NULL;
CREATE INDEX orders_by_user ON orders(userId, createdAt);
CREATE INDEX orders_with_pending_charge ON orders(pendingCard) WHERE pendingCard IS NOT NULL;
CREATE TABLE invoices_v2 (
    orderId TEXT PRIMARY KEY REFERENCES orders(id),
    number INTEGER NOT NULL UNIQUE,
    html TEXT NOT NULL,
    createdAt INTEGER NOT NULL
);
INSERT INTO invoices_v2 (orderId, number, html, createdAt) SELECT orderId, number, html, createdAt FROM invoices;
DROP TABLE invoices;
ALTER TABLE invoices_v2 RENAME TO invoices;

-- migration: payments v2: charges to retry
CREATE TABLE pending_charges (
    orderId TEXT PRIMARY KEY,
    card TEXT NOT NULL,
    amountCents INTEGER NOT NULL,
    createdAt INTEGER NOT NULL
) WITHOUT ROWID;

-- migration: orders v3: the deadline
ALTER TABLE orders ADD COLUMN deadlinePassed INTEGER NOT NULL DEFAULT 0;

-- migration: inventory v2: cancelled orders
CREATE TABLE cancelled_orders (orderId TEXT PRIMARY KEY) WITHOUT ROWID;

-- migration: payments v3: cancelled orders
CREATE TABLE cancelled_orders (orderId TEXT PRIMARY KEY) WITHOUT ROWID;

-- migration: flow v1
-- seq: the order in which events reached the log, which breaks ties
-- between events stamped in the same millisecond.
CREATE TABLE flow_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    correlationId TEXT,
    name TEXT NOT NULL,
    source TEXT NOT NULL,
    time INTEGER NOT NULL,
    causationId TEXT
);
CREATE INDEX flow_events_by_story ON flow_events(correlationId, time, seq);

-- migration: reporting v1
-- status: pending → confirmed → shipped, or cancelled (before or after
-- confirmation: a cancelled confirmed order was refunded, not sold).
CREATE TABLE sales_orders (
    generation INTEGER NOT NULL,
    orderId TEXT NOT NULL,
    status TEXT NOT NULL,
    totalCents INTEGER NOT NULL,
    PRIMARY KEY (generation, orderId)
) WITHOUT ROWID;
CREATE TABLE sales_lines (
    generation INTEGER NOT NULL,
    orderId TEXT NOT NULL,
    line INTEGER NOT NULL,
    productId TEXT NOT NULL,
    sku TEXT,
    quantity INTEGER NOT NULL,
    lineTotalCents INTEGER,
    PRIMARY KEY (generation, orderId, line)
) WITHOUT ROWID;

-- migration: analytics v1
-- Times in ms since 1970, from the events' `time`. sold: confirmed or
-- shipped and not cancelled since (what the sales report counts).
CREATE TABLE analytics_orders (
    generation INTEGER NOT NULL,
    orderId TEXT NOT NULL,
    createdAt INTEGER NOT NULL,
    decidedAt INTEGER,
    sold INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (generation, orderId)
) WITHOUT ROWID;
CREATE TABLE analytics_lines (
    generation INTEGER NOT NULL,
    orderId TEXT NOT NULL,
    line INTEGER NOT NULL,
    productId TEXT NOT NULL,
    sku TEXT,
    quantity INTEGER NOT NULL,
    PRIMARY KEY (generation, orderId, line)
) WITHOUT ROWID;
-- minute: ms since 1970 of the minute's start.
CREATE TABLE analytics_minutes (
    generation INTEGER NOT NULL,
    minute INTEGER NOT NULL,
    placed INTEGER NOT NULL DEFAULT 0,
    confirmed INTEGER NOT NULL DEFAULT 0,
    cancelled INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (generation, minute)
) WITHOUT ROWID;
CREATE TABLE analytics_cancellations (
    generation INTEGER NOT NULL,
    reason TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (generation, reason)
) WITHOUT ROWID;

-- migration: read model v1
-- live: the generation queries read; building: the one a replay is
-- filling, if any.
CREATE TABLE read_model_generations (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    live INTEGER NOT NULL,
    building INTEGER
);
INSERT INTO read_model_generations (id, live, building) VALUES (1, 1, NULL);
-- The next offset to read, per generation and partition, written with
-- the update it follows.
CREATE TABLE read_model_positions (
    generation INTEGER NOT NULL,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    nextOffset INTEGER NOT NULL,
    PRIMARY KEY (generation, topic, partition)
) WITHOUT ROWID;
-- Events applied, per generation: a copy published twice counts once.
CREATE TABLE read_model_events (
    generation INTEGER NOT NULL,
    eventId TEXT NOT NULL,
    PRIMARY KEY (generation, eventId)
) WITHOUT ROWID;

-- migration: payments v4: reservations read before their order
CREATE TABLE reserved_orders (
    orderId TEXT PRIMARY KEY,
    eventId TEXT NOT NULL
) WITHOUT ROWID;

-- migration: read model v2: what became of each rebuild
-- outcome: NULL while it runs; 'switched', or 'mismatch' (dropped, with
-- what differed in detail) once it has caught up.
-- forced: switch even if it differs (an operator replacing a model
-- they know is wrong); detail then says what differed.
CREATE TABLE read_model_rebuilds (
    generation INTEGER PRIMARY KEY,
    startedAt INTEGER NOT NULL,
    forced INTEGER NOT NULL DEFAULT 0,
    finishedAt INTEGER,
    outcome TEXT,
    detail TEXT
);

-- migration: event store v1
CREATE TABLE events (
    position INTEGER PRIMARY KEY,
    stream TEXT NOT NULL,
    version INTEGER NOT NULL,
    type TEXT NOT NULL,
    schemaVersion INTEGER NOT NULL,
    data TEXT NOT NULL,
    correlationId TEXT,
    causationId TEXT,
    requestId TEXT,
    time INTEGER NOT NULL,
    UNIQUE (stream, version)
);
CREATE INDEX events_by_time ON events(time);
CREATE TABLE snapshots (
    stream TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    foldVersion INTEGER NOT NULL,
    state BLOB NOT NULL,
    time INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE checkpoints (
    name TEXT PRIMARY KEY,
    position INTEGER NOT NULL
) WITHOUT ROWID;

-- migration: orders v1 (event-sourced): idempotency keys and invoices
CREATE TABLE idempotency_keys (
    userId TEXT NOT NULL,
    idempotencyKey TEXT NOT NULL,
    orderId TEXT NOT NULL,
    requestFingerprint TEXT NOT NULL,
    PRIMARY KEY (userId, idempotencyKey)
) WITHOUT ROWID;
CREATE TABLE invoices (
    orderId TEXT PRIMARY KEY,
    number INTEGER NOT NULL UNIQUE,
    html TEXT NOT NULL,
    createdAt INTEGER NOT NULL
);

-- migration: order views v1
-- version: how many of the order's events are folded into state.
CREATE TABLE order_views (
    generation INTEGER NOT NULL,
    orderId TEXT NOT NULL,
    userId TEXT NOT NULL,
    createdAt INTEGER NOT NULL,
    version INTEGER NOT NULL,
    status TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (generation, orderId)
) WITHOUT ROWID;
CREATE INDEX order_views_by_user ON order_views(generation, userId, createdAt);
CREATE INDEX order_views_by_time ON order_views(generation, createdAt);
-- The store position each generation has applied.
CREATE TABLE view_positions (
    generation INTEGER PRIMARY KEY,
    position INTEGER NOT NULL
);

-- migration: sales v1 (from the order store)
CREATE TABLE sales_orders (
    generation INTEGER NOT NULL,
    orderId TEXT NOT NULL,
    status TEXT NOT NULL,
    totalCents INTEGER NOT NULL,
    PRIMARY KEY (generation, orderId)
) WITHOUT ROWID;
CREATE TABLE sales_lines (
    generation INTEGER NOT NULL,
    orderId TEXT NOT NULL,
    line INTEGER NOT NULL,
    productId TEXT NOT NULL,
    sku TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    lineTotalCents INTEGER NOT NULL,
    PRIMARY KEY (generation, orderId, line)
) WITHOUT ROWID;
CREATE TABLE sales_products (
    generation INTEGER NOT NULL,
    productId TEXT NOT NULL,
    sku TEXT NOT NULL,
    unitsSold INTEGER NOT NULL,
    revenueCents INTEGER NOT NULL,
    PRIMARY KEY (generation, productId)
) WITHOUT ROWID;
CREATE TABLE sales_positions (
    generation INTEGER PRIMARY KEY,
    position INTEGER NOT NULL
);

-- migration: sales v2: each order's version
ALTER TABLE sales_orders ADD COLUMN version INTEGER NOT NULL DEFAULT 0;

-- migration: messaging v3: outbox traceparent
ALTER TABLE outbox ADD COLUMN traceparent TEXT

-- migration: event store v2: traceparent
ALTER TABLE events ADD COLUMN traceparent TEXT
