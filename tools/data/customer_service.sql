-- Sample customer-service database for Brightline Electronics (fictional).
-- Dates are relative to the moment the database is built, so refund windows and ticket
-- ages stay realistic whenever the sample is created. Money is stored in cents.

PRAGMA foreign_keys = ON;

CREATE TABLE customers (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    email       TEXT NOT NULL UNIQUE COLLATE NOCASE,
    phone       TEXT,
    tier        TEXT NOT NULL CHECK (tier IN ('standard', 'plus', 'vip')),
    created_at  TEXT NOT NULL
);

CREATE TABLE orders (
    id              TEXT PRIMARY KEY,
    customer_id     TEXT NOT NULL REFERENCES customers(id),
    status          TEXT NOT NULL CHECK (status IN
                        ('pending', 'processing', 'shipped', 'delivered', 'cancelled', 'returned')),
    shipping_method TEXT NOT NULL CHECK (shipping_method IN ('standard', 'express', 'international')),
    created_at      TEXT NOT NULL,
    shipped_at      TEXT,
    delivered_at    TEXT,
    tracking_number TEXT,
    shipping_cents  INTEGER NOT NULL DEFAULT 0,
    total_cents     INTEGER NOT NULL  -- items + shipping, what the customer paid
);

CREATE TABLE order_items (
    order_id         TEXT NOT NULL REFERENCES orders(id),
    sku              TEXT NOT NULL,
    name             TEXT NOT NULL,
    quantity         INTEGER NOT NULL CHECK (quantity > 0),
    unit_price_cents INTEGER NOT NULL,
    PRIMARY KEY (order_id, sku)
);

CREATE TABLE tickets (
    id          TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers(id),
    order_id    TEXT REFERENCES orders(id),
    subject     TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('open', 'pending', 'escalated', 'resolved', 'closed')),
    priority    TEXT NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE ticket_notes (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id  TEXT NOT NULL REFERENCES tickets(id),
    created_at TEXT NOT NULL,
    author     TEXT NOT NULL,
    body       TEXT NOT NULL
);

CREATE TABLE refunds (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id     TEXT NOT NULL REFERENCES orders(id),
    amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
    reason       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    created_by   TEXT NOT NULL DEFAULT 'agent'
);

INSERT INTO customers VALUES
 ('C001', 'Maria Lopez',    'maria.lopez@example.com',    '+1 555 0101', 'standard', datetime('now', '-400 days')),
 ('C002', 'James Chen',     'james.chen@example.com',     '+1 555 0102', 'vip',      datetime('now', '-900 days')),
 ('C003', 'Aisha Khan',     'aisha.khan@example.com',     '+44 20 7946 0103', 'standard', datetime('now', '-120 days')),
 ('C004', 'Tom Becker',     'tom.becker@example.com',     '+49 30 555 0104', 'plus', datetime('now', '-300 days')),
 ('C005', 'Sofia Rossi',    'sofia.rossi@example.com',    '+39 06 555 0105', 'standard', datetime('now', '-60 days')),
 ('C006', 'Liam O''Brien',  'liam.obrien@example.com',    '+353 1 555 0106', 'standard', datetime('now', '-210 days')),
 ('C007', 'Yuki Tanaka',    'yuki.tanaka@example.com',    '+81 3 555 0107', 'vip',   datetime('now', '-720 days')),
 ('C008', 'Noah Williams',  'noah.williams@example.com',  '+1 555 0108', 'standard', datetime('now', '-45 days')),
 ('C009', 'Emma Schmidt',   'emma.schmidt@example.com',   '+49 89 555 0109', 'plus', datetime('now', '-500 days')),
 ('C010', 'Daniel Okafor',  'daniel.okafor@example.com',  '+1 555 0110', 'standard', datetime('now', '-150 days'));

-- id, customer, status, method, created, shipped, delivered, tracking, shipping, total
INSERT INTO orders VALUES
 ('O1001', 'C001', 'delivered',  'standard', datetime('now','-20 days'), datetime('now','-18 days'), datetime('now','-15 days'), '1Z999AA10000001', 0, 12900),
 ('O1002', 'C001', 'delivered',  'standard', datetime('now','-60 days'), datetime('now','-58 days'), datetime('now','-55 days'), '1Z999AA10000002', 599, 5499),
 ('O1003', 'C002', 'delivered',  'express',  datetime('now','-10 days'), datetime('now','-9 days'),  datetime('now','-8 days'),  '1Z999AA10000003', 0, 66100),
 ('O1004', 'C002', 'shipped',    'express',  datetime('now','-3 days'),  datetime('now','-2 days'),  NULL,                       '1Z999AA10000004', 1499, 26399),
 ('O1005', 'C003', 'processing', 'standard', datetime('now','-1 days'),  NULL, NULL, NULL, 0, 13800),
 ('O1006', 'C003', 'delivered',  'standard', datetime('now','-25 days'), datetime('now','-23 days'), datetime('now','-20 days'), '1Z999AA10000006', 0, 6300),
 ('O1007', 'C004', 'cancelled',  'standard', datetime('now','-12 days'), NULL, NULL, NULL, 0, 29900),
 ('O1008', 'C004', 'delivered',  'standard', datetime('now','-5 days'),  datetime('now','-4 days'),  datetime('now','-2 days'),  '1Z999AA10000008', 0, 5900),
 ('O1009', 'C005', 'pending',    'standard', datetime('now','-2 hours'), NULL, NULL, NULL, 0, 32900),
 ('O1010', 'C005', 'delivered',  'standard', datetime('now','-40 days'), datetime('now','-38 days'), datetime('now','-35 days'), '1Z999AA10000010', 0, 12900),
 ('O1011', 'C006', 'delivered',  'express',  datetime('now','-7 days'),  datetime('now','-6 days'),  datetime('now','-5 days'),  '1Z999AA10000011', 0, 92800),
 ('O1012', 'C006', 'returned',   'standard', datetime('now','-30 days'), datetime('now','-28 days'), datetime('now','-26 days'), '1Z999AA10000012', 599, 5499),
 ('O1013', 'C007', 'delivered',  'standard', datetime('now','-14 days'), datetime('now','-12 days'), datetime('now','-10 days'), '1Z999AA10000013', 0, 28800),
 ('O1014', 'C007', 'shipped',    'express',  datetime('now','-20 days'), datetime('now','-19 days'), NULL,                       '1Z999AA10000014', 1499, 31399),
 ('O1015', 'C008', 'delivered',  'standard', datetime('now','-9 days'),  datetime('now','-8 days'),  datetime('now','-6 days'),  '1Z999AA10000015', 0, 7100),
 ('O1016', 'C008', 'delivered',  'standard', datetime('now','-3 days'),  datetime('now','-2 days'),  datetime('now','-1 days'),  '1Z999AA10000016', 0, 10900),
 ('O1017', 'C009', 'delivered',  'standard', datetime('now','-18 days'), datetime('now','-16 days'), datetime('now','-13 days'), '1Z999AA10000017', 0, 32900),
 ('O1018', 'C009', 'processing', 'standard', datetime('now','-2 days'),  NULL, NULL, NULL, 0, 64900),
 ('O1019', 'C010', 'delivered',  'standard', datetime('now','-28 days'), datetime('now','-26 days'), datetime('now','-22 days'), '1Z999AA10000019', 0, 18800),
 ('O1020', 'C010', 'delivered',  'standard', datetime('now','-95 days'), datetime('now','-93 days'), datetime('now','-90 days'), '1Z999AA10000020', 0, 89900);

INSERT INTO order_items VALUES
 ('O1001', 'BL-HP200',  'Wireless Headphones 200', 1, 12900),
 ('O1002', 'BL-SPK10',  'Bluetooth Speaker Mini',  1, 4900),
 ('O1003', 'BL-TAB11P', 'Tablet 11 Pro',           1, 64900),
 ('O1003', 'BL-CBL2',   'USB-C Cable 2m',          1, 1200),
 ('O1004', 'BL-WTC3',   'Smartwatch 3',            1, 24900),
 ('O1005', 'BL-KBD75',  'Mechanical Keyboard 75%', 1, 10900),
 ('O1005', 'BL-MSE',    'Wireless Mouse',          1, 2900),
 ('O1006', 'BL-CHG65',  '65W USB-C Charger',       1, 3900),
 ('O1006', 'BL-CBL2',   'USB-C Cable 2m',          2, 1200),
 ('O1007', 'BL-CAM4K',  'Action Camera 4K',        1, 29900),
 ('O1008', 'BL-EBD',    'Earbuds Lite',            1, 5900),
 ('O1009', 'BL-MON27',  '27-inch Monitor',         1, 32900),
 ('O1010', 'BL-HP200',  'Wireless Headphones 200', 1, 12900),
 ('O1011', 'BL-LTP14',  'Laptop 14',               1, 89900),
 ('O1011', 'BL-MSE',    'Wireless Mouse',          1, 2900),
 ('O1012', 'BL-SPK10',  'Bluetooth Speaker Mini',  1, 4900),
 ('O1013', 'BL-WTC3',   'Smartwatch 3',            1, 24900),
 ('O1013', 'BL-CHG65',  '65W USB-C Charger',       1, 3900),
 ('O1014', 'BL-CAM4K',  'Action Camera 4K',        1, 29900),
 ('O1015', 'BL-EBD',    'Earbuds Lite',            1, 5900),
 ('O1015', 'BL-CBL2',   'USB-C Cable 2m',          1, 1200),
 ('O1016', 'BL-KBD75',  'Mechanical Keyboard 75%', 1, 10900),
 ('O1017', 'BL-MON27',  '27-inch Monitor',         1, 32900),
 ('O1018', 'BL-TAB11P', 'Tablet 11 Pro',           1, 64900),
 ('O1019', 'BL-HP200',  'Wireless Headphones 200', 1, 12900),
 ('O1019', 'BL-EBD',    'Earbuds Lite',            1, 5900),
 ('O1020', 'BL-LTP14',  'Laptop 14',               1, 89900);

INSERT INTO refunds (order_id, amount_cents, reason, created_at, created_by) VALUES
 ('O1012', 4900, 'Speaker returned unopened', datetime('now','-24 days'), 'agent'),
 ('O1019', 5900, 'Earbuds defective on arrival (left bud silent)', datetime('now','-20 days'), 'agent');

INSERT INTO tickets VALUES
 ('T501', 'C001', 'O1001', 'Headphones: left ear cup crackles at high volume', 'open', 'normal', datetime('now','-1 days'), datetime('now','-1 days')),
 ('T502', 'C002', 'O1003', 'Return tablet: several dead pixels, wants full refund', 'open', 'high', datetime('now','-1 days'), datetime('now','-1 days')),
 ('T503', 'C007', 'O1014', 'Package has not arrived, tracking unchanged', 'open', 'high', datetime('now','-6 days'), datetime('now','-2 days')),
 ('T504', 'C003', 'O1005', 'Change shipping address before dispatch', 'pending', 'normal', datetime('now','-1 days'), datetime('now','-20 hours')),
 ('T505', 'C004', 'O1007', 'Confirm that the cancelled order was not charged', 'resolved', 'low', datetime('now','-11 days'), datetime('now','-11 days')),
 ('T506', 'C006', 'O1011', 'Laptop gets very hot and smells of burning plastic', 'escalated', 'urgent', datetime('now','-2 days'), datetime('now','-2 days')),
 ('T507', 'C005', NULL,    'Cannot sign in: account locked', 'open', 'normal', datetime('now','-3 hours'), datetime('now','-3 hours')),
 ('T508', 'C008', 'O1015', 'Earbuds case arrived cracked', 'open', 'normal', datetime('now','-3 days'), datetime('now','-3 days')),
 ('T509', 'C010', 'O1020', 'Laptop battery drains within two hours', 'open', 'normal', datetime('now','-4 days'), datetime('now','-4 days')),
 ('T510', 'C009', 'O1017', 'Monitor stand was missing screws', 'closed', 'low', datetime('now','-10 days'), datetime('now','-8 days'));

INSERT INTO ticket_notes (ticket_id, created_at, author, body) VALUES
 ('T501', datetime('now','-1 days'), 'customer', 'The left side crackles above 70% volume, on every device I tried.'),
 ('T502', datetime('now','-1 days'), 'customer', 'At least five dead pixels near the top edge. I want my money back, not a replacement.'),
 ('T503', datetime('now','-6 days'), 'customer', 'Express order, tracking has shown "in transit" for days.'),
 ('T503', datetime('now','-2 days'), 'agent', 'Carrier trace opened; no movement since dispatch.'),
 ('T504', datetime('now','-20 hours'), 'agent', 'Asked the customer to confirm the new postcode.'),
 ('T505', datetime('now','-11 days'), 'agent', 'Payment authorisation was released on cancellation; customer informed.'),
 ('T506', datetime('now','-2 days'), 'agent', 'Safety issue: told the customer to stop using the laptop. Escalated to product safety.'),
 ('T507', datetime('now','-3 hours'), 'customer', 'Tried my password several times and now it says the account is locked.'),
 ('T508', datetime('now','-3 days'), 'customer', 'The charging case has a crack across the lid; photo attached.'),
 ('T509', datetime('now','-4 days'), 'customer', 'Battery went from 100% to empty in under two hours after three months.'),
 ('T510', datetime('now','-8 days'), 'agent', 'Replacement screws shipped; customer confirmed receipt.');
