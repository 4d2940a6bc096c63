-- SMS credit packages and their prices per currency (editable by the operator).

CREATE TABLE sms_packages (
    id          text PRIMARY KEY CHECK (id ~ '^[a-z][a-z0-9_]*$'),
    name        text NOT NULL,
    credits     bigint NOT NULL CHECK (credits > 0),
    sort_order  integer NOT NULL DEFAULT 0,
    active      boolean NOT NULL DEFAULT true
);

CREATE TABLE sms_package_prices (
    package_id  text NOT NULL REFERENCES sms_packages (id),
    currency    text NOT NULL CHECK (currency IN ('USD', 'TZS', 'KES')),
    amount      numeric(14, 2) NOT NULL CHECK (amount > 0),
    PRIMARY KEY (package_id, currency)
);

-- Prices from the product sheet (USD; Business also TZS 20,000). The other TZS prices follow the
-- sheet's own rate (TZS 2,500 per USD); KES prices use KES 130 per USD, rounded.
INSERT INTO sms_packages (id, name, credits, sort_order) VALUES
    ('starter',    'Starter',      100, 1),
    ('business',   'Business',     500, 2),
    ('pro',        'Pro',         1000, 3),
    ('enterprise', 'Enterprise',  5000, 4),
    ('mega',       'Mega',       10000, 5);

INSERT INTO sms_package_prices (package_id, currency, amount) VALUES
    ('starter',    'USD',      2.00), ('starter',    'TZS',   5000), ('starter',    'KES',   260),
    ('business',   'USD',      8.00), ('business',   'TZS',  20000), ('business',   'KES',  1040),
    ('pro',        'USD',     14.00), ('pro',        'TZS',  35000), ('pro',        'KES',  1820),
    ('enterprise', 'USD',     60.00), ('enterprise', 'TZS', 150000), ('enterprise', 'KES',  7800),
    ('mega',       'USD',    100.00), ('mega',       'TZS', 250000), ('mega',       'KES', 13000);
