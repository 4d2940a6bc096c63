// Generated from the served /openapi.json by clients/typescript/scripts/generate: do not edit.
// clients/typescript/scripts/check fails when it is stale.

export interface paths {
    "/admin": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * The operator's status page (HTML). A browser opens `/admin?token=<JWT>` once: the token is
         *     exchanged for an HttpOnly, SameSite=Strict session cookie and the browser is redirected to
         *     `/admin` (303) without it.
         */
        get: {
            parameters: {
                query?: {
                    /** @description a super_admin's JWT, exchanged for the session cookie (then 303 to /admin) */
                    token?: string;
                };
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description the status page */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "text/html": string;
                    };
                };
                /** @description the token was accepted: the session cookie is set, go to /admin */
                303: {
                    headers: {
                        /** @description /admin */
                        Location?: string;
                        /** @description copcca_admin=<JWT>; Path=/admin; HttpOnly; SameSite=Strict */
                        "Set-Cookie"?: string;
                        [name: string]: unknown;
                    };
                    content?: never;
                };
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description invalid_query */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/admin/companies": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Companies in creation order, with their balances; `search` narrows by name or id. */
        get: {
            parameters: {
                query?: {
                    /** @description Part of the name (case-insensitive), or a whole company id. */
                    search?: string;
                    /** @description Companies per page, 1..=200 (default 50). */
                    limit?: number;
                    /** @description Only companies after this one (the previous page's `next_after`). */
                    after?: components["schemas"]["CompanyId"];
                };
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["CompanyPage"];
                    };
                };
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/admin/companies/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        /**
         * Changes a company's settings: name, hourly quota, time zone, quiet hours, sweeps. Every field
         *     is checked before anything is written; a refused field changes nothing. Each change is
         *     recorded with who made it and the values before and after.
         */
        patch: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description company id */
                    id: string;
                };
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": components["schemas"]["CompanyPatch"];
                };
            };
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["CompanyUpdated"];
                    };
                };
                /** @description malformed_json or malformed_body */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description payload_too_large */
                413: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description unsupported_media_type */
                415: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description validation_failed (errors per field) or invalid_body (an unknown field, a wrong type) */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        trace?: never;
    };
    "/admin/companies/{id}/adjustments": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Adjusts a company's credits. An `Idempotency-Key` header (a UUID) makes a retry safe. */
        post: {
            parameters: {
                query?: never;
                header?: {
                    /** @description UUID; repeats apply once */
                    "Idempotency-Key"?: string | null;
                };
                path: {
                    /** @description company id */
                    id: string;
                };
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": components["schemas"]["AdjustmentRequest"];
                };
            };
            responses: {
                /** @description replay of an applied Idempotency-Key */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["AdjustmentResponse"];
                    };
                };
                201: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["AdjustmentResponse"];
                    };
                };
                /** @description malformed_json or malformed_body */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description insufficient_credits */
                409: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description payload_too_large */
                413: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description unsupported_media_type */
                415: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/admin/companies/{id}/changes": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The history of a company's settings, newest first: who, when, the values before and after. */
        get: {
            parameters: {
                query?: {
                    /** @description Changes per page, 1..=200 (default 50). */
                    limit?: number;
                    /** @description Only changes older than this one (the previous page's `next_before`). */
                    before?: number;
                };
                header?: never;
                path: {
                    /** @description company id */
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["ChangePage"];
                    };
                };
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/admin/companies/{id}/opt-outs/{phone}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post?: never;
        /** Removes a number from a company's opt-out list, whoever put it there. */
        delete: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description company id */
                    id: string;
                    phone: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                204: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content?: never;
                };
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description no such company, or the number is not on its list */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description validation_failed: the path is not a phone number */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/admin/messages/{id}/resolve": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Settles a send held as unanswered as the provider's console shows it: `sent` (with its id)
         *     charges it, exactly as when a delivery report names it, and it is never sent again;
         *     `not_sent` fails it and releases its credits.
         */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description message id */
                    id: string;
                };
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": components["schemas"]["ResolveRequest"];
                };
            };
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Resolved"];
                    };
                };
                /** @description malformed_json or malformed_body */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description not_held: the message is not held as unanswered; attempt_in_flight: it is being sent again now; provider_id_in_use */
                409: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description payload_too_large */
                413: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description unsupported_media_type */
                415: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description validation_failed: provider_id missing for sent, given for not_sent, or malformed */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/admin/purchases/{id}/approve": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Approves a bank transfer the operator has seen arrive: the payment becomes `paid` and is
         *     credited by the purchase worker. Approving it again with the same bank reference changes
         *     nothing; an under-payment needs `credits`.
         */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description payment id */
                    id: string;
                };
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": components["schemas"]["ApproveRequest"];
                };
            };
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["PurchaseView"];
                    };
                };
                /** @description malformed_json or malformed_body */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description not a pending transfer */
                409: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description payload_too_large */
                413: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description unsupported_media_type */
                415: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/admin/purchases/{id}/refund": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Gives a credited purchase's money back through its provider (a Vodacom M-Pesa reversal, a
         *     Stripe refund) and takes its unspent credits back, never below zero (a shortfall is recorded
         *     and flagged); the payment becomes `refunded`. Daraja and bank payments are paid back outside
         *     the service.
         */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description payment id */
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["PurchaseView"];
                    };
                };
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description not a credited purchase */
                409: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description refund_not_supported (Daraja, bank transfer) */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description refund_failed: the provider refused, or its answer was lost (the payment is flagged) */
                502: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/admin/purchases/{id}/reject": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Rejects a bank transfer that will not be honoured; the payment becomes `failed`. */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description payment id */
                    id: string;
                };
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": components["schemas"]["RejectRequest"];
                };
            };
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["PurchaseView"];
                    };
                };
                /** @description malformed_json or malformed_body */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description already paid */
                409: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description payload_too_large */
                413: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description unsupported_media_type */
                415: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/admin/rate-card": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * The rate card in force: every destination (the home markets 255 and 254 among them), the
         *     special ranges and whether each is enabled, and the latest change.
         */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["RateCardView"];
                    };
                };
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        /**
         * Replaces the rate card. Every field is checked before anything is written (422
         *     `validation_failed`, one `errors` entry per problem, e.g. `rates[2].credits_per_segment`); a
         *     refused card changes nothing. Messages already accepted keep their price; new ones get the
         *     new card at once in this process and within `SETTINGS_RELOAD_MS` in the others.
         */
        put: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": components["schemas"]["RateCardRequest"];
                };
            };
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["RateCardUpdated"];
                    };
                };
                /** @description malformed_json or malformed_body */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description payload_too_large */
                413: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description unsupported_media_type */
                415: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description validation_failed (errors per field) or invalid_body (an unknown field, a wrong type) */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/admin/rate-card/changes": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The history of the rate card, newest first: who, when, what changed before and after. */
        get: {
            parameters: {
                query?: {
                    /** @description Changes per page, 1..=200 (default 50). */
                    limit?: number;
                    /** @description Only changes older than this one (the previous page's `next_before`). */
                    before?: number;
                };
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["RateCardChangePage"];
                    };
                };
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/admin/reports/revenue": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Credits sold and money received per currency, messages and segments charged, the provider's
         *     cost in its own price unit, refunds and the margin per currency, never adding currencies.
         */
        get: {
            parameters: {
                query: {
                    /** @description First UTC day (`YYYY-MM-DD`), included. */
                    from: string;
                    /** @description Last UTC day, included (at most 366 days by day, 120 months by month). */
                    to: string;
                    /** @description `day` (default) or `month`. */
                    group_by?: "day" | "month";
                    /** @description Only this company. */
                    company?: components["schemas"]["CompanyId"];
                    /** @description `json` (default) or `csv`; `Accept: text/csv` asks for CSV too. */
                    format?: "json" | "csv";
                };
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description the report, as JSON or (format=csv or Accept: text/csv) CSV */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["RevenueReport"];
                        "text/csv": string;
                    };
                };
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description invalid_query (a malformed date or value) or validation_failed (the range) */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/admin/routes": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The routing table and every route's circuit. */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Routes"];
                    };
                };
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        /** Replaces the routing table; the change is recorded with who made it. */
        put: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": components["schemas"]["RoutesUpdate"];
                };
            };
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Routes"];
                    };
                };
                /** @description malformed_json or malformed_body */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description payload_too_large */
                413: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description unsupported_media_type */
                415: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description validation_failed: a malformed rule (named by its position), a route named twice, two rules for one destination and company, or an unknown company */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/admin/settings/africastalking": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The Africa's Talking route's account in force (the API key masked). */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["AfricasTalkingView"];
                    };
                };
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                503: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        /**
         * Stores the Africa's Talking route's account after Africa's Talking accepts the username and
         *     API key (its user data answers, on `AT_API_BASE`). Refused: 422 `credentials_refused`;
         *     unreachable: 502 `provider_unavailable`; nothing stored either way. Every running process
         *     sends through the new account within `SETTINGS_RELOAD_MS`, unless `AT_*` sets one (it wins).
         */
        put: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": components["schemas"]["AfricasTalkingRequest"];
                };
            };
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["AfricasTalkingView"];
                    };
                };
                /** @description malformed_json or malformed_body */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description payload_too_large */
                413: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description unsupported_media_type */
                415: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description validation_failed or credentials_refused */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description provider_unavailable */
                502: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description settings_key_missing */
                503: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/admin/settings/beem": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The Beem route's account in force (keys masked). */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["BeemView"];
                    };
                };
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                503: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        /**
         * Stores the Beem route's account after Beem accepts the key pair (its balance answers, on
         *     `BEEM_API_BASE`). Refused: 422 `credentials_refused`; Beem unreachable: 502
         *     `provider_unavailable`; nothing stored either way. Every running process sends through the
         *     new account within `SETTINGS_RELOAD_MS`, unless `BEEM_*` sets one (it wins).
         */
        put: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": components["schemas"]["BeemRequest"];
                };
            };
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["BeemView"];
                    };
                };
                /** @description malformed_json or malformed_body */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description payload_too_large */
                413: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description unsupported_media_type */
                415: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description validation_failed or credentials_refused */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description provider_unavailable */
                502: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description settings_key_missing */
                503: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/admin/settings/mpesa": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The M-Pesa credentials in force (secrets masked). */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["MpesaView"];
                    };
                };
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                503: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        /** Stores the M-Pesa credentials (their shape is checked, not their validity). */
        put: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": components["schemas"]["MpesaRequest"];
                };
            };
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["MpesaView"];
                    };
                };
                /** @description malformed_json or malformed_body */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description payload_too_large */
                413: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description unsupported_media_type */
                415: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description settings_key_missing */
                503: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/admin/settings/stripe": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The Stripe credentials in force (masked). */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["StripeView"];
                    };
                };
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                503: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        /** Stores the Stripe credentials (their shape is checked, not their validity). */
        put: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": components["schemas"]["StripeRequest"];
                };
            };
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["StripeView"];
                    };
                };
                /** @description malformed_json or malformed_body */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description payload_too_large */
                413: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description unsupported_media_type */
                415: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description settings_key_missing */
                503: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/admin/settings/twilio": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The central Twilio account in force (token masked). */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["TwilioView"];
                    };
                };
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description settings_undecryptable */
                503: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        /**
         * Stores the central Twilio account after Twilio accepts the credentials
         *     (`GET /2010-04-01/Accounts/{sid}.json`). Refused credentials are not stored (422
         *     `credentials_refused`); Twilio unreachable: 502 `provider_unavailable`. A new auth token
         *     keeps the old one for callbacks for `TWILIO_TOKEN_GRACE_SECS`; a new account SID while the
         *     stored account has unresolved sends: 409 `account_in_use`. Every running process uses the
         *     new credentials within `SETTINGS_RELOAD_MS`.
         */
        put: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": components["schemas"]["TwilioRequest"];
                };
            };
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["TwilioView"];
                    };
                };
                /** @description malformed_json or malformed_body */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description account_in_use: the stored account still has unresolved sends */
                409: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description payload_too_large */
                413: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description unsupported_media_type */
                415: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description validation_failed or credentials_refused */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description provider_unavailable */
                502: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description settings_key_missing */
                503: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/admin/settings/vodacom": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The Vodacom M-Pesa account in force (the API key masked). */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["VodacomView"];
                    };
                };
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                503: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        /**
         * Stores the Vodacom M-Pesa account (the API key encrypted) after checking it: its shape, and
         *     then Vodacom itself, by opening a session with it.
         */
        put: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": components["schemas"]["VodacomRequest"];
                };
            };
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["VodacomView"];
                    };
                };
                /** @description malformed_json or malformed_body */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description payload_too_large */
                413: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description unsupported_media_type */
                415: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description validation_failed, or vodacom_refused: no session opens with them */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description settings_key_missing */
                503: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/healthz": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The process is up. */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Health"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/metrics": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Prometheus metrics (OpenMetrics text; series listed in the README). */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/openmetrics-text; version=1.0.0; charset=utf-8": string;
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/openapi.json": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** This document. */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description the OpenAPI document */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": unknown;
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/readyz": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** PostgreSQL and Redis both answer. */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Readiness"];
                    };
                };
                503: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/balance": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The caller's company balance. */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Balance"];
                    };
                };
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description rate_limited: the company is over its request rate */
                429: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/batches/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** A batch's progress: counts by status and credits charged (net of refunds). */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["BatchReport"];
                    };
                };
                /** @description missing_credentials, invalid_token, invalid_api_key or unknown_user */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description no_company: the caller belongs to no company */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description rate_limited: the company is over its request rate */
                429: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/ledger": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The caller's ledger entries, newest first. */
        get: {
            parameters: {
                query?: {
                    /** @description Entries per page, 1..=200 (default 50). */
                    limit?: number;
                    /** @description Only entries older than this entry id (the previous page's `next_before`). */
                    before?: number;
                };
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["LedgerPage"];
                    };
                };
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description no_company: the caller belongs to no company */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description rate_limited: the company is over its request rate */
                429: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/messages": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The caller's messages, newest first. */
        get: {
            parameters: {
                query?: {
                    /** @description Only messages in this status. */
                    status?: string;
                    /** @description Only messages to this E.164 number. */
                    to?: string;
                    /** @description 1..=200 (default 50). */
                    limit?: number;
                    /** @description The previous page's `next_before`. */
                    before?: components["schemas"]["MessageId"];
                };
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["MessagePage"];
                    };
                };
                /** @description missing_credentials, invalid_token, invalid_api_key or unknown_user */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description no_company: the caller belongs to no company */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description rate_limited: the company is over its request rate */
                429: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        put?: never;
        /**
         * Accepts one message for sending. An `Idempotency-Key` makes a retry return the same message;
         *     the same key with a different message is refused.
         */
        post: {
            parameters: {
                query?: never;
                header?: {
                    /** @description at most 200 characters */
                    "Idempotency-Key"?: string | null;
                };
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": components["schemas"]["SendRequest"];
                };
            };
            responses: {
                202: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Queued"];
                    };
                };
                /** @description malformed_json or malformed_body */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description no_company: the caller belongs to no company */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description payload_too_large */
                413: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description unsupported_media_type */
                415: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description validation_failed, destination_unpriced, destination_forbidden, destination_restricted (the rate card refuses the number; nothing written), recipient_opted_out or idempotency_key_reused */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description rate_limited: the company is over its request rate */
                429: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/messages/batch": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Accepts up to 10,000 messages (explicit bodies or templates); each item is validated on its
         *     own and refusals come back by index.
         */
        post: {
            parameters: {
                query?: never;
                header?: {
                    "Idempotency-Key"?: string | null;
                };
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": components["schemas"]["BatchRequest"];
                };
            };
            responses: {
                202: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["BatchAccepted"];
                    };
                };
                /** @description malformed_json or malformed_body */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description missing_credentials, invalid_token, invalid_api_key or unknown_user */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description no_company: the caller belongs to no company */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description insufficient_credits, with needed and available */
                409: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description payload_too_large */
                413: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description unsupported_media_type */
                415: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description rate_limited: the company is over its request rate */
                429: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/messages/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** One of the caller's messages. */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Message"];
                    };
                };
                /** @description missing_credentials, invalid_token, invalid_api_key or unknown_user */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description no_company: the caller belongs to no company */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description rate_limited: the company is over its request rate */
                429: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/opt-outs": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The caller's opt-out list, by number. */
        get: {
            parameters: {
                query?: {
                    /** @description 1..=500 (default 100). */
                    limit?: number;
                    /** @description The previous page's `next_after`. */
                    after?: string;
                };
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["OptOutPage"];
                    };
                };
                /** @description missing_credentials, invalid_token, invalid_api_key or unknown_user */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description no_company: the caller belongs to no company */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description invalid_query */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description rate_limited: the company is over its request rate */
                429: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        put?: never;
        /** Adds a number to the caller's opt-out list (201; 200 if it was there already). */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": components["schemas"]["OptOutRequest"];
                };
            };
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["OptOut"];
                    };
                };
                201: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["OptOut"];
                    };
                };
                /** @description malformed_json or malformed_body */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description missing_credentials, invalid_token, invalid_api_key or unknown_user */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description no_company: the caller belongs to no company */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description payload_too_large */
                413: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description unsupported_media_type */
                415: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description rate_limited: the company is over its request rate */
                429: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/opt-outs/{phone}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post?: never;
        /**
         * Removes a number from the caller's opt-out list, unless the recipient opted out itself (its
         *     STOP): that only the recipient's START, or an operator, undoes.
         */
        delete: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    phone: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                204: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content?: never;
                };
                /** @description missing_credentials, invalid_token, invalid_api_key or unknown_user */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description no_company: the caller belongs to no company */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description opted_out_by_recipient: the recipient's own STOP, which only its START or an operator undoes */
                409: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description validation_failed: the path is not a phone number */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description rate_limited: the company is over its request rate */
                429: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/packages": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The credit packages on sale, with prices per currency. */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Package"][];
                    };
                };
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description no_company: the caller belongs to no company */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description rate_limited: the company is over its request rate */
                429: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/payment-methods": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * The payment methods and currencies this service takes now: M-Pesa is Vodacom for TZS
         *     (Tanzanian wallets) and Daraja for KES (Kenyan wallets), each only when configured; a card
         *     needs Stripe; a bank transfer is always possible.
         */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Offered"][];
                    };
                };
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description no_company: the caller belongs to no company */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description rate_limited: the company is over its request rate */
                429: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/purchases": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The caller's purchases, newest first. */
        get: {
            parameters: {
                query?: {
                    /** @description Only purchases in this status. */
                    status?: string;
                    /** @description 1..=200 (default 50). */
                    limit?: number;
                };
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["PurchaseView"][];
                    };
                };
                /** @description missing_credentials, invalid_token, invalid_api_key or unknown_user */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description no_company: the caller belongs to no company */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description rate_limited: the company is over its request rate */
                429: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        put?: never;
        /**
         * Buys a credit package. M-Pesa prompts the phone (the payment is `pending` until the customer
         *     answers); card returns a Stripe Checkout URL; bank transfer returns the bank details and the
         *     reference to quote. Credits arrive once the provider (or the operator) confirms the money.
         *     An `Idempotency-Key` makes a retry return the same purchase.
         */
        post: {
            parameters: {
                query?: never;
                header?: {
                    /** @description at most 200 characters */
                    "Idempotency-Key"?: string | null;
                };
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": components["schemas"]["PurchaseBody"];
                };
            };
            responses: {
                /** @description replay of an Idempotency-Key */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["PurchaseView"];
                    };
                };
                201: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["PurchaseView"];
                    };
                };
                /** @description malformed_json or malformed_body */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description no_company: the caller belongs to no company */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description payload_too_large */
                413: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description unsupported_media_type */
                415: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description validation_failed, method_not_available or idempotency_key_reused */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description rate_limited: the company is over its request rate */
                429: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description mpesa_rejected or stripe_rejected: the provider refused; the payment is failed */
                502: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description mpesa_unavailable or stripe_unavailable: try again later */
                503: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/purchases/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** One of the caller's purchases, with its current status. */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["PurchaseView"];
                    };
                };
                /** @description missing_credentials, invalid_token, invalid_api_key or unknown_user */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description no_company: the caller belongs to no company */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description rate_limited: the company is over its request rate */
                429: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/templates": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Every template the company can use: its own, and the defaults it has not replaced. */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["TemplateList"];
                    };
                };
                /** @description missing_credentials, invalid_token, invalid_api_key or unknown_user */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description no_company: the caller belongs to no company */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description rate_limited: the company is over its request rate */
                429: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/templates/preview": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Renders a template with values, as a batch would, and prices it. A missing or malformed
         *     value is 422 (`missing_variable` / `invalid_variable`) naming each variable.
         */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": components["schemas"]["PreviewRequest"];
                };
            };
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Preview"];
                    };
                };
                /** @description malformed_json or malformed_body */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description missing_credentials, invalid_token, invalid_api_key or unknown_user */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description no_company: the caller belongs to no company */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description payload_too_large */
                413: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description unsupported_media_type */
                415: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description validation_failed, unknown_template, missing_variable or invalid_variable; errors name the fields (vars.<variable>); destination_unpriced, destination_forbidden or destination_restricted when the rate card refuses `to` */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description rate_limited: the company is over its request rate */
                429: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/templates/{name}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** One template, in each language the company has it in. */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    name: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["TemplateList"];
                    };
                };
                /** @description missing_credentials, invalid_token, invalid_api_key or unknown_user */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description no_company: the caller belongs to no company */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description rate_limited: the company is over its request rate */
                429: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        /**
         * Saves the company's template `name` in one language (201 when new, 200 when replaced).
         *     Unknown variables and stray braces are refused here, never at send time.
         */
        put: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    name: string;
                };
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": components["schemas"]["SaveTemplate"];
                };
            };
            responses: {
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["TemplateView"];
                    };
                };
                201: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["TemplateView"];
                    };
                };
                /** @description malformed_json or malformed_body */
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description missing_credentials, invalid_token, invalid_api_key or unknown_user */
                401: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description no_company: the caller belongs to no company */
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description not_found (also a malformed id) */
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description payload_too_large */
                413: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description unsupported_media_type */
                415: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description validation_failed, with errors [{field, message}] */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description rate_limited: the company is over its request rate */
                429: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/webhooks/africastalking/{token}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description the route's secret report token */
                    token: string;
                };
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/x-www-form-urlencoded": string;
                };
            };
            responses: {
                /** @description stored */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content?: never;
                };
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description payload_too_large */
                413: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description unsupported_media_type */
                415: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description invalid_body or validation_failed */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description rate_limited: too many requests from this client address */
                429: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/webhooks/beem/{token}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description the route's secret report token */
                    token: string;
                };
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": unknown;
                };
            };
            responses: {
                /** @description stored: {"request_id":…,"successful":true} */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content?: never;
                };
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description payload_too_large */
                413: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description unsupported_media_type */
                415: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description invalid_body or validation_failed */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description rate_limited: too many requests from this client address */
                429: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/webhooks/mpesa/{token}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description the payment's secret callback token */
                    token: string;
                };
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": unknown;
                };
            };
            responses: {
                /** @description stored: {"ResultCode":0,"ResultDesc":"Accepted"} */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content?: never;
                };
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description payload_too_large */
                413: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description unsupported_media_type */
                415: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description invalid_body or validation_failed */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description rate_limited: too many requests from this client address */
                429: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/webhooks/stripe": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post: {
            parameters: {
                query?: never;
                header: {
                    "Stripe-Signature": string;
                };
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": unknown;
                };
            };
            responses: {
                /** @description stored */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content?: never;
                };
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description payload_too_large */
                413: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description unsupported_media_type */
                415: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description invalid_body or validation_failed */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description rate_limited: too many requests from this client address */
                429: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/webhooks/twilio/inbound": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * An inbound SMS to our number. STOP / UNSUBSCRIBE / ACHA puts the sender on the opt-out list of
         *     the company that last messaged it; START / ANZA takes it off. Other replies are stored only.
         */
        post: {
            parameters: {
                query?: never;
                header: {
                    "X-Twilio-Signature": string;
                };
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/x-www-form-urlencoded": string;
                };
            };
            responses: {
                /** @description stored */
                204: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content?: never;
                };
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description payload_too_large */
                413: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description unsupported_media_type */
                415: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description invalid_body or validation_failed */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description rate_limited: too many requests from this client address */
                429: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/webhooks/twilio/status": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * A Twilio status callback. Forged or unsigned: 403 and nothing changes. Repeated
         *     (same MessageSid and MessageStatus): 204 and nothing changes.
         */
        post: {
            parameters: {
                query?: never;
                header: {
                    "X-Twilio-Signature": string;
                };
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/x-www-form-urlencoded": string;
                };
            };
            responses: {
                /** @description stored */
                204: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content?: never;
                };
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                403: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description payload_too_large */
                413: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description unsupported_media_type */
                415: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description invalid_body or validation_failed */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description rate_limited: too many requests from this client address */
                429: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/webhooks/vodacom/{token}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    /** @description the payment's secret callback token */
                    token: string;
                };
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": unknown;
                };
            };
            responses: {
                /** @description stored: {"output_ResponseCode":"0","output_ResponseDesc":"Successfully Accepted Result",...} */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content?: never;
                };
                400: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                404: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description payload_too_large */
                413: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description unsupported_media_type */
                415: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description invalid_body or validation_failed */
                422: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description rate_limited: too many requests from this client address */
                429: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
                /** @description database_unavailable: PostgreSQL is down or restarting; retry after Retry-After */
                503: {
                    headers: {
                        /** @description seconds to wait before trying again */
                        "Retry-After"?: number;
                        [name: string]: unknown;
                    };
                    content: {
                        "application/problem+json": components["schemas"]["Problem"];
                    };
                };
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
}
export type webhooks = Record<string, never>;
export interface components {
    schemas: {
        AdjustmentRequest: {
            /**
             * Format: int64
             * @description Credits to add (positive) or remove (negative); never zero.
             */
            credits: number;
            /** @description Why, for the audit trail (1..=500 characters). */
            reason: string;
        };
        AdjustmentResponse: {
            /** Format: uuid */
            adjustment_id: string;
            balance: components["schemas"]["Balance"];
            company_id: components["schemas"]["CompanyId"];
            /** Format: int64 */
            credits: number;
            /** Format: int64 */
            entry_id: number;
            /** @description True when this Idempotency-Key was already applied and nothing changed now. */
            replay: boolean;
        };
        AfricasTalkingRequest: {
            /** @description The application's API key. */
            api_key: string;
            /** @description The registered sender id (at most 11 letters or digits) or short code. */
            sender_id: string;
            /** @description The application's username (`sandbox` on the sandbox host). */
            username: string;
        };
        /** @description The Africa's Talking account in force, the API key masked. */
        AfricasTalkingView: {
            /** @description `****` and the last four characters. */
            api_key?: string | null;
            sender_id?: string | null;
            source?: null | components["schemas"]["CredentialsSource"];
            stored?: null | components["schemas"]["Stored"];
            username?: string | null;
        };
        ApproveRequest: {
            /** @description The amount that arrived, as a decimal string (`"25000.00"`). */
            amount: string;
            /** @description The bank's reference of the incoming transfer. */
            bank_reference: string;
            /**
             * Format: int64
             * @description Credits to grant instead of the package's; required when less than the price arrived.
             */
            credits?: number | null;
            currency: string;
        };
        /** @description A company's credits: the materialised sum of its ledger entries. */
        Balance: {
            /** @description Credits that can be spent now. */
            available: components["schemas"]["Credits"];
            company_id: components["schemas"]["CompanyId"];
            /** @description Credits held for messages in flight. */
            reserved: components["schemas"]["Credits"];
            /**
             * Format: int64
             * @description Net operator adjustments (may be negative).
             */
            total_adjusted: number;
            /** Format: int64 */
            total_purchased: number;
            /** Format: int64 */
            total_refunded: number;
            /**
             * Format: int64
             * @description Credits charged for messages.
             */
            total_sent: number;
        };
        /** @description Where to send a bank transfer, and the reference to quote. */
        BankInstructions: {
            account_name: string;
            account_number: string;
            bank: string;
            /** @description `SMS-{COMPANY}-{TIMESTAMP}`: quote it so the operator can match the transfer. */
            reference: string;
        };
        BatchAccepted: {
            accepted: number;
            /** Format: uuid */
            batch_id: string;
            /**
             * Format: int64
             * @description The accepted messages' credits: each one's segments x its destination's rate.
             */
            credits: number;
            estimate?: null | components["schemas"]["Estimate"];
            /**
             * @description Refused items by index; a destination the rate card refuses is `destination_unpriced`,
             *     `destination_forbidden` or `destination_restricted`.
             */
            rejected: components["schemas"]["Rejected"][];
        };
        /** @description One message: an explicit `body`, or a `template` with its `vars`. */
        BatchEntry: {
            body?: string | null;
            /** @description `en` (default) or `sw`. */
            language?: string | null;
            /** @description A template name (`payment_reminder`): the company's own, else the default. */
            template?: string | null;
            to: string;
            /**
             * @description The template's values, strings or numbers: `{"customer_name": "Asha", "amount": 20000,
             *     "due_date": "2026-11-24", ...}`. `company_name`, `currency` and `payment_link` default
             *     to the company's.
             */
            vars?: Record<string, unknown> | null;
        };
        /** @description Counts by status and credits charged, for `GET /v1/batches/{id}`. */
        BatchReport: {
            /** Format: int32 */
            accepted: number;
            /** Format: uuid */
            batch_id: string;
            by_status: {
                [key: string]: number;
            };
            /** Format: date-time */
            created_at: string;
            /** Format: int64 */
            credits_charged: number;
            estimate?: null | components["schemas"]["Estimate"];
            /**
             * Format: int64
             * @description Messages whose credits were given back (failed or undelivered after being sent).
             */
            refunded: number;
            /**
             * Format: int64
             * @description Messages not yet final or sent: `queued` or `sending`.
             */
            remaining: number;
            /** Format: int32 */
            total: number;
        };
        BatchRequest: {
            /** @description Accept what the credits cover, in order, instead of refusing the whole batch. */
            allow_partial?: boolean;
            /** @description 1..=10,000 messages. */
            messages: components["schemas"]["BatchEntry"][];
        };
        BeemRequest: {
            /** @description The API key of Beem's key pair. */
            api_key: string;
            /** @description The secret key of Beem's key pair. */
            secret_key: string;
            /**
             * @description The sender name registered with TCRA through Beem (at most 11 letters or digits), or a
             *     short code.
             */
            source_addr: string;
        };
        /** @description The Beem account in force, both keys masked. */
        BeemView: {
            /** @description `****` and at most the last four characters. */
            api_key?: string | null;
            secret_key?: string | null;
            source?: null | components["schemas"]["CredentialsSource"];
            source_addr?: string | null;
            stored?: null | components["schemas"]["Stored"];
        };
        /**
         * @description What bounds a batch's pace.
         * @enum {string}
         */
        Bound: "quota" | "sender";
        ChangePage: {
            changes: components["schemas"]["CompanyChange"][];
            /**
             * Format: int64
             * @description Pass as `before` for the next page; absent on the last page.
             */
            next_before?: number | null;
        };
        /** @description A route's circuit as the operator sees it. */
        Circuit: {
            /**
             * Format: int32
             * @description Transient failures in a row so far.
             */
            failures: number;
            /**
             * Format: int64
             * @description Until when it is open (Unix ms), when it is.
             */
            open_until_ms?: number | null;
            /** @description The last failure's reason. */
            reason?: string;
            route: components["schemas"]["RouteName"];
            state: components["schemas"]["CircuitState"];
        };
        /** @enum {string} */
        CircuitState: "closed" | "open" | "half_open";
        /**
         * @description A company and the settings the operator may change (`PATCH /admin/companies/{id}`,
         *     `admin update-company`).
         */
        Company: {
            country: components["schemas"]["Country"];
            /** Format: date-time */
            created_at: string;
            currency: components["schemas"]["Currency"];
            id: components["schemas"]["CompanyId"];
            name: string;
            /** @example 08:00 */
            quiet_hours_end: string;
            /**
             * @description Start of the nightly quiet hours (`HH:MM`, in `timezone`); equal to the end: none.
             * @example 21:00
             */
            quiet_hours_start: string;
            /**
             * Format: int32
             * @description Messages per hour, fleet-wide.
             */
            sms_per_hour: number;
            /** @description Whether overdue-debt sweeps run for this company. */
            sweep_enabled: boolean;
            timezone: components["schemas"]["TimeZone"];
            /** Format: date-time */
            updated_at: string;
        };
        /** @description One recorded change of a company's settings: only what changed, before and after. */
        CompanyChange: {
            /** @description Who: `user:<uuid>` (the API) or `cli:admin`. */
            actor: string;
            after: Record<string, unknown>;
            before: Record<string, unknown>;
            /** Format: date-time */
            changed_at: string;
            company_id: components["schemas"]["CompanyId"];
            /** Format: int64 */
            id: number;
        };
        /**
         * Format: uuid
         * @description A tenant of the CRM.
         */
        CompanyId: string;
        /** @description A company with its balance, as the operator's list shows it. */
        CompanyListing: components["schemas"]["Company"] & {
            /**
             * Format: int64
             * @description Credits that can be spent now.
             */
            available: number;
            /** Format: int64 */
            disputes_lost: number;
            /**
             * Format: int64
             * @description Card disputes still open, and lost: the company is flagged while either is above zero.
             */
            disputes_open: number;
            /**
             * Format: int64
             * @description Credits held for messages in flight.
             */
            reserved: number;
            /** Format: int64 */
            total_purchased: number;
            /** Format: int64 */
            total_sent: number;
        };
        CompanyPage: {
            companies: components["schemas"]["CompanyListing"][];
            next_after?: null | components["schemas"]["CompanyId"];
        };
        /**
         * @description A change of settings as asked for (raw values, as they come from a request or the command
         *     line); [`CompanyPatch::validate`] turns it into a [`SettingsChange`] or says what is wrong
         *     with each field. Absent fields stay as they are.
         */
        CompanyPatch: {
            /** @description 1..=200 characters (trimmed). */
            name?: string | null;
            /** @description `HH:MM` (24 h). */
            quiet_hours_end?: string | null;
            /** @description `HH:MM` (24 h). Equal start and end turn quiet hours off. */
            quiet_hours_start?: string | null;
            /**
             * Format: int64
             * @description Messages per hour, 1..=1000000.
             */
            sms_per_hour?: number | null;
            sweep_enabled?: boolean | null;
            /** @description An IANA time zone, e.g. `Africa/Nairobi`. */
            timezone?: string | null;
        };
        CompanyUpdated: {
            change?: null | components["schemas"]["CompanyChange"];
            company: components["schemas"]["Company"];
            /**
             * @description With a new `sms_per_hour`: the company's queued messages given a send job at once, so the
             *     new quota applies to them now. Null when the quota did not change, or Redis did not answer
             *     (then each waits out the delay the old quota gave it).
             */
            messages_requeued?: number | null;
        };
        /**
         * @description A company's home market: decides how local numbers are read and the default currency.
         * @enum {string}
         */
        Country: "TZ" | "KE";
        /**
         * @description Where the credentials in force come from.
         * @enum {string}
         */
        CredentialsSource: "environment" | "settings";
        /**
         * Format: int64
         * @description A non-negative number of credits.
         */
        Credits: number;
        /**
         * @description The currencies packages are priced in. TZS and KES are two-decimal in ISO 4217 (and at Stripe).
         * @enum {string}
         */
        Currency: "USD" | "TZS" | "KES";
        /**
         * @description A valid number in E.164 form (`+255754123456`).
         * @example +255754123456
         */
        E164: string;
        /** @enum {string} */
        Encoding: "GSM-7" | "UCS-2";
        /** @description One append-only ledger entry. */
        Entry: {
            actor: string;
            /**
             * Format: int64
             * @description Change of the available credits.
             */
            available_delta: number;
            /** Format: date-time */
            created_at: string;
            hold_id?: null | components["schemas"]["HoldId"];
            /** Format: int64 */
            id: number;
            kind: components["schemas"]["EntryKind"];
            message_id?: null | components["schemas"]["MessageId"];
            payment_id?: null | components["schemas"]["PaymentId"];
            reason?: string | null;
            /**
             * Format: int64
             * @description Change of the reserved credits.
             */
            reserved_delta: number;
        };
        /**
         * @description Kinds of ledger entry.
         * @enum {string}
         */
        EntryKind: "purchase" | "reserve" | "commit" | "release" | "refund" | "adjustment" | "purchase_reversal";
        /** @description When a batch is expected to be sent. */
        Estimate: {
            bounded_by: components["schemas"]["Bound"];
            /**
             * Format: date-time
             * @description When its last message is expected to reach the provider.
             */
            completes_at: string;
            /** @description Whether quiet hours hold part of it back. */
            held_by_quiet_hours: boolean;
            /**
             * Format: double
             * @description Seconds of sending it needs, quiet hours aside.
             */
            sending_seconds: number;
        };
        /** @description One invalid field of a request. */
        FieldError: {
            field: string;
            message: string;
        };
        /**
         * @description What the provider's console shows.
         * @enum {string}
         */
        Found: "sent" | "not_sent";
        /** @enum {string} */
        GroupBy: "day" | "month";
        Health: {
            status: string;
        };
        /**
         * Format: uuid
         * @description A reservation of credits for one message.
         */
        HoldId: string;
        /**
         * @description A template's language. Without one, a request means English (as a debt does by default).
         * @enum {string}
         */
        Language: "en" | "sw";
        LedgerPage: {
            entries: components["schemas"]["Entry"][];
            /**
             * Format: int64
             * @description Pass as `before` for the next page; absent on the last page.
             */
            next_before?: number | null;
        };
        /**
         * @description A message as the API shows it to its company: what it costs the company is `credits`; what
         *     the provider charged the platform (`messages.price`, recorded with the charge) is the
         *     operator's business and not part of it.
         */
        Message: {
            body: string;
            company_id: components["schemas"]["CompanyId"];
            /** Format: date-time */
            created_at: string;
            credits: components["schemas"]["Credits"];
            /** Format: uuid */
            debt_id?: string | null;
            encoding: string;
            error_code?: string | null;
            error_message?: string | null;
            id: components["schemas"]["MessageId"];
            invoice_number?: string | null;
            provider?: string | null;
            provider_id?: string | null;
            /** @description Whether the message's credits were given back. */
            refunded: boolean;
            /** Format: int32 */
            segments: number;
            status: components["schemas"]["MessageStatus"];
            to: components["schemas"]["E164"];
            /** Format: int64 */
            uncharged_credits: number;
            /** Format: date-time */
            updated_at: string;
        };
        /**
         * Format: uuid
         * @description One SMS the service was asked to send.
         */
        MessageId: string;
        MessagePage: {
            messages: components["schemas"]["Message"][];
            next_before?: null | components["schemas"]["MessageId"];
        };
        /** @enum {string} */
        MessageStatus: "queued" | "sending" | "sent" | "delivered" | "undelivered" | "failed";
        /**
         * @description How a purchase is paid.
         * @enum {string}
         */
        Method: "mpesa" | "card" | "bank_transfer";
        MpesaRequest: {
            /** @description The Daraja app's consumer key. */
            consumer_key: string;
            /** @description The Daraja app's consumer secret. */
            consumer_secret: string;
            /** @description The Lipa na M-Pesa Online passkey. */
            passkey: string;
            /** @description The paybill or till number payments go to (digits). */
            shortcode: string;
        };
        /** @description The M-Pesa credentials in force, secrets masked. */
        MpesaView: {
            consumer_key?: string | null;
            consumer_secret?: string | null;
            passkey?: string | null;
            shortcode?: string | null;
            source?: null | components["schemas"]["CredentialsSource"];
            stored?: null | components["schemas"]["Stored"];
        };
        /** @description A way to pay this deployment takes now (`GET /v1/payment-methods`). */
        Offered: {
            /** @description ISO codes. */
            currencies: string[];
            method: components["schemas"]["Method"];
            /** @description `vodacom`, `daraja`, `stripe` or `bank`. */
            provider: string;
        };
        OptOut: {
            /** Format: date-time */
            created_at: string;
            /** @description E.164. */
            phone: string;
            /** @description `api`, `inbound_stop`, `twilio_21610` or `operator`. */
            source: string;
        };
        OptOutPage: {
            next_after?: string | null;
            opt_outs: components["schemas"]["OptOut"][];
        };
        OptOutRequest: {
            /** @description E.164 or a local number of the company's country. */
            phone: string;
        };
        /** @description A package as the API shows it: prices per currency as decimal strings. */
        Package: {
            /** Format: int64 */
            credits: number;
            /** @description `starter`, `business`, `pro`, `enterprise` or `mega`. */
            id: string;
            name: string;
            /** @description Currency code -> price, e.g. `{"USD": "8.00", "TZS": "20000.00"}`. */
            prices: {
                [key: string]: string;
            };
        };
        /**
         * Format: uuid
         * @description One purchase of credits.
         */
        PaymentId: string;
        /** @description A rendered message and what it would cost. */
        Preview: {
            characters: number;
            /**
             * Format: int64
             * @description `segments` x `credits_per_segment`.
             */
            credits: number;
            /**
             * Format: int64
             * @description The rate card's credits per segment to `to` (or to a mobile of the company's country).
             */
            credits_per_segment: number;
            encoding: components["schemas"]["Encoding"];
            language: components["schemas"]["Language"];
            /** Format: int32 */
            segments: number;
            text: string;
        };
        PreviewRequest: {
            /** @description An unsaved template text, checked as a save would. */
            body?: string | null;
            /** @description `en` (default) or `sw`. */
            language?: string | null;
            /** @description A saved template's name; or give `body`. */
            template?: string | null;
            /** @description Price the message for this number; without it, for a number of the company's country. */
            to?: string | null;
            vars?: Record<string, unknown> | null;
        };
        /** @description The body of every error response. */
        Problem: (Record<string, unknown> | null) & {
            /** @description Stable machine-readable code, e.g. `invalid_token`, `insufficient_credits`. */
            code: string;
            detail: string;
            errors?: components["schemas"]["FieldError"][];
            /** Format: int32 */
            status: number;
            title: string;
            /** @description `urn:copcca-sms:problem:<code>`. */
            type: string;
        };
        PurchaseBody: {
            /** @description `USD`, `TZS` or `KES`; defaults to the company's currency (M-Pesa: TZS or KES only). */
            currency?: string | null;
            method: components["schemas"]["Method"];
            /** @description `starter`, `business`, `pro`, `enterprise` or `mega` (see `GET /v1/packages`). */
            package_id: string;
            /**
             * @description The M-Pesa wallet to prompt: a Tanzanian mobile number for TZS (Vodacom, `0754123456` or
             *     `+255754123456`), a Kenyan one for KES (Daraja, `0712345678` or `+254712345678`).
             */
            phone?: string | null;
        };
        /** @description A purchase as the company sees it. */
        PurchaseView: {
            /** @description Decimal string, e.g. `"25000.00"`. */
            amount: string;
            bank?: null | components["schemas"]["BankInstructions"];
            /** @description Stripe Checkout page to send the buyer to (card). */
            checkout_url?: string | null;
            /** Format: date-time */
            created_at: string;
            /**
             * Format: int64
             * @description Credits the purchase gives (or gave: an operator may grant fewer for an under-payment).
             */
            credits: number;
            currency: string;
            failure_reason?: string | null;
            id: components["schemas"]["PaymentId"];
            method: components["schemas"]["Method"];
            package_id: string;
            /** @description The wallet prompted (M-Pesa), E.164. */
            phone?: string | null;
            /** @description The M-Pesa receipt, Stripe PaymentIntent or bank reference, once paid. */
            receipt?: string | null;
            /** @description `initiated`, `pending`, `paid`, `credited`, `failed`, `cancelled`, `expired` or `refunded`. */
            status: components["schemas"]["Status"];
            /** Format: date-time */
            updated_at: string;
        };
        Queued: {
            /** Format: date-time */
            created_at: string;
            /** @description What the message costs: `segments` x `credits_per_segment`, reserved at send. */
            credits: components["schemas"]["Credits"];
            /**
             * Format: int64
             * @description The destination's rate on the rate card when the message was accepted (1 for the home
             *     markets).
             */
            credits_per_segment: number;
            /** @description `GSM-7` or `UCS-2`. */
            encoding: string;
            id: components["schemas"]["MessageId"];
            /** Format: int32 */
            segments: number;
            status: components["schemas"]["MessageStatus"];
            to: components["schemas"]["E164"];
        };
        /** @description A special range and whether it is enabled. */
        RangeEntry: {
            enabled: boolean;
            range: components["schemas"]["SpecialRange"];
            /** Format: date-time */
            updated_at: string;
            updated_by: string;
        };
        /** @description One destination of the card. */
        Rate: {
            /** @description False refuses the numbers of this prefix (a longer prefix may allow some back). */
            allowed: boolean;
            /**
             * Format: int64
             * @description 1..=1000.
             */
            credits_per_segment: number;
            /** @description The number's leading digits without `+`: a calling code (`44`) or longer (`4479`). */
            prefix: string;
        };
        /**
         * @description One recorded change of the card: who, when, and what changed, before and after
         *     (`{"rates": {"44": {"credits_per_segment": 3, "allowed": true} | null}, "special_ranges":
         *     {"satellite": false}}`, only what changed).
         */
        RateCardChange: {
            actor: string;
            after: Record<string, unknown>;
            before: Record<string, unknown>;
            /** Format: date-time */
            changed_at: string;
            /** Format: int64 */
            id: number;
        };
        RateCardChangePage: {
            changes: components["schemas"]["RateCardChange"][];
            /**
             * Format: int64
             * @description Pass as `before` for the next page; absent on the last page.
             */
            next_before?: number | null;
        };
        /**
         * @description The whole card: what is not listed is removed (the home markets stay; listed, they must be 1
         *     credit per segment and allowed), and the ranges not listed in `enabled_ranges` are disabled.
         */
        RateCardRequest: {
            /**
             * @description Special ranges sent to (they still need a rate): `premium_rate`, `shared_cost`,
             *     `satellite`. Default none.
             */
            enabled_ranges?: string[];
            rates: components["schemas"]["RateInput"][];
        };
        RateCardUpdated: {
            /** @description The card after the change. */
            card: components["schemas"]["RateCardView"];
            change?: null | components["schemas"]["RateCardChange"];
        };
        /** @description The whole card. */
        RateCardView: {
            last_change?: null | components["schemas"]["RateCardChange"];
            /** @description Every destination, by prefix. */
            rates: components["schemas"]["RateEntry"][];
            special_ranges: components["schemas"]["RangeEntry"][];
        };
        /** @description A destination as the operator sees it. */
        RateEntry: components["schemas"]["Rate"] & {
            /** @description The home markets (255, 254): 1 credit per segment, not changeable. */
            home: boolean;
            /** Format: date-time */
            updated_at: string;
            updated_by: string;
        };
        /** @description One destination as the operator sets it. */
        RateInput: {
            /** @description False refuses this prefix's numbers (default true). */
            allowed?: boolean | null;
            /**
             * Format: int64
             * @description Credits per SMS segment, 1..=1000.
             */
            credits_per_segment: number;
            /**
             * @description The number's leading digits without `+`: a calling code (`44`) or a longer prefix
             *     (`4479`); the longest prefix that matches a number prices it.
             */
            prefix: string;
        };
        Readiness: {
            postgres: string;
            redis: string;
        };
        RejectRequest: {
            /** @description Why (1..=500 characters), shown to the company. */
            reason: string;
        };
        /** @description One refused item. */
        Rejected: {
            /**
             * @description `invalid_to`, `destination_unpriced`, `destination_forbidden`, `destination_restricted`,
             *     `invalid_body`, `unknown_template`, `missing_variable`, `invalid_variable`,
             *     `recipient_opted_out`, `insufficient_credits`.
             */
            code: string;
            /** @description Names the variable for `missing_variable` and `invalid_variable`. */
            detail: string;
            index: number;
        };
        ResolveRequest: {
            outcome: components["schemas"]["Found"];
            /**
             * @description The provider's id of the message (Twilio's `SM…` SID; Beem's `<request_id>:<message id>`;
             *     Africa's Talking's `ATXid_…`), required when `outcome` is `sent`.
             */
            provider_id?: string | null;
        };
        Resolved: {
            message_id: components["schemas"]["MessageId"];
            outcome: components["schemas"]["Found"];
        };
        RevenueReport: {
            company_id?: null | components["schemas"]["CompanyId"];
            /** Format: date */
            from: string;
            group_by: components["schemas"]["GroupBy"];
            /** @description How to read the money columns (see [`CURRENCY_NOTE`]). */
            note: string;
            /** @description Period by period, companies in id order; a company with nothing in a period has no row. */
            rows: components["schemas"]["RevenueRow"][];
            /** Format: date */
            to: string;
        };
        /** @description One company in one period. */
        RevenueRow: {
            company_id?: null | components["schemas"]["CompanyId"];
            company_name: string;
            /** Format: int64 */
            credits_charged: number;
            /** Format: int64 */
            credits_refunded: number;
            /**
             * Format: int64
             * @description Credits taken back for refunded card payments.
             */
            credits_reversed: number;
            /**
             * Format: int64
             * @description Credits of purchases credited in the period.
             */
            credits_sold: number;
            /** @description Per currency: `net_received` minus `provider_cost` (no exchange rates). */
            margin: {
                [key: string]: string;
            };
            /**
             * Format: int64
             * @description Messages refunded in the period, and their credits.
             */
            messages_refunded: number;
            /**
             * Format: int64
             * @description Messages charged in the period (handed to the provider).
             */
            messages_sent: number;
            /** @description Per currency: `received` minus `refunded_amount` (negative when refunds outweigh). */
            net_received: {
                [key: string]: string;
            };
            /** @description `YYYY-MM-DD` or `YYYY-MM` (UTC). */
            period: string;
            /** @description What the provider charged for those messages, per its price unit. */
            provider_cost: {
                [key: string]: string;
            };
            /** @description The money those purchases brought, per currency (what arrived). */
            received: {
                [key: string]: string;
            };
            /** @description Money paid back in the period (card refunds), per currency, whenever it was received. */
            refunded_amount: {
                [key: string]: string;
            };
            /** Format: int64 */
            segments_sent: number;
            /**
             * Format: int64
             * @description Charged messages with no provider price (yet): the cost above leaves them out.
             */
            unpriced_messages: number;
        };
        /**
         * @description A provider account messages can go through.
         * @enum {string}
         */
        RouteName: "twilio" | "beem" | "africastalking";
        /**
         * @description One rule: numbers starting with `destination` (digits without `+`, or `*` for any), of
         *     `company` or of everybody, go through `routes`, the first available first.
         */
        RouteRule: {
            /**
             * Format: uuid
             * @description Only this company's messages; everybody's when absent.
             */
            company_id?: string | null;
            /** @description A country calling code or longer prefix, digits only (`255`, `25575`), or `*`. */
            destination: string;
            /** @description In order of preference; each route once. */
            routes: components["schemas"]["RouteName"][];
        };
        RouteStatus: {
            circuit?: null | components["schemas"]["Circuit"];
            /**
             * @description Its account is configured (`TWILIO_*`, `BEEM_*`, `AT_*`, or settings); a route without
             *     one is skipped like one whose circuit is open.
             */
            configured: boolean;
            /**
             * @description Where its provider must post delivery reports (set it in Beem's portal or Africa's
             *     Talking's dashboard): its last segment is the route's secret, derived from its account's
             *     secret, so it changes when that is rotated. Absent for Twilio (each message names its
             *     own, signed) and for a route without an account.
             */
            report_url?: string | null;
            route: components["schemas"]["RouteName"];
        };
        Routes: {
            /** @description The routes a message takes when no rule matches. */
            default: components["schemas"]["RouteName"][];
            /** @description Every route: whether this deployment has its account, and its circuit. */
            routes: components["schemas"]["RouteStatus"][];
            /**
             * @description The rules, in the order they were set. The most specific matching rule decides (a
             *     company's own before everybody's, then the longest prefix).
             */
            rules: components["schemas"]["RouteRule"][];
        };
        RoutesUpdate: {
            /** @description The whole new table (replaces the old one; `[]` restores Twilio for everything). */
            rules: components["schemas"]["RouteRule"][];
        };
        SaveTemplate: {
            /** @description Up to 1,600 characters; `{variable}` placeholders, `{{` and `}}` for literal braces. */
            body: string;
            /** @description `en` or `sw`. */
            language: string;
        };
        SendRequest: {
            /** @description 1..=1600 characters. */
            body: string;
            /** Format: uuid */
            debt_id?: string | null;
            invoice_number?: string | null;
            /** @description False lets a message go out during quiet hours (e.g. a one-time code). Default true. */
            quiet_hours?: boolean | null;
            /** @description E.164, or a local number read in the company's country (`0754123456`). */
            to: string;
        };
        /**
         * @description Kinds of numbers refused unless the operator enables them.
         * @enum {string}
         */
        SpecialRange: "premium_rate" | "shared_cost" | "satellite";
        /**
         * @description Where a payment is. It only moves forward, by the moves of [`TRANSITIONS`]: `initiated ->
         *     pending -> paid -> credited` (`credited -> refunded` when the money goes back), or to one of
         *     the ends `failed`, `cancelled`, `expired` before it is paid.
         * @enum {string}
         */
        Status: "initiated" | "pending" | "paid" | "credited" | "failed" | "cancelled" | "expired" | "refunded";
        /** @description When the stored settings were last written and by whom. */
        Stored: {
            /** Format: date-time */
            updated_at: string;
            updated_by?: string | null;
        };
        StripeRequest: {
            /** @description A secret (`sk_...`) or restricted (`rk_...`) API key. */
            secret_key: string;
            /** @description The webhook endpoint's signing secret (`whsec_...`). */
            webhook_secret: string;
        };
        /** @description The Stripe credentials in force, masked. */
        StripeView: {
            secret_key?: string | null;
            source?: null | components["schemas"]["CredentialsSource"];
            stored?: null | components["schemas"]["Stored"];
            webhook_secret?: string | null;
        };
        TemplateList: {
            templates: components["schemas"]["TemplateView"][];
        };
        /**
         * @description Where a template comes from.
         * @enum {string}
         */
        TemplateSource: "company" | "default";
        /** @description A template as the company sees it. */
        TemplateView: {
            body: string;
            /**
             * @description Encoding of its fixed text: `UCS-2` warns that every message costs a segment per 67
             *     characters instead of 153.
             */
            encoding: components["schemas"]["Encoding"];
            language: components["schemas"]["Language"];
            name: string;
            /** @description `company` (saved by the company) or `default` (the service's, until the company saves its own). */
            source: components["schemas"]["TemplateSource"];
            /** Format: date-time */
            updated_at: string;
            /** @description The variables it uses, in order of first use. */
            variables: components["schemas"]["Variable"][];
        };
        /**
         * @description An IANA time zone (`Africa/Dar_es_Salaam`), as a company stores it.
         * @example Africa/Dar_es_Salaam
         */
        TimeZone: string;
        TwilioRequest: {
            /** @description `AC` followed by 32 characters. */
            account_sid: string;
            /** @description The account's primary auth token. */
            auth_token: string;
            /** @description An E.164 number, an alphanumeric sender id, or a Messaging Service SID (`MG...`). */
            from: string;
        };
        /** @description The Twilio account in force, its token masked. */
        TwilioView: {
            account_sid?: string | null;
            /** @description `****` and the last four characters. */
            auth_token?: string | null;
            from?: string | null;
            /**
             * Format: date-time
             * @description Until when callbacks signed with the token before the latest rotation are accepted;
             *     null when none is (no rotation, or its grace is over).
             */
            previous_token_accepted_until?: string | null;
            source?: null | components["schemas"]["CredentialsSource"];
            stored?: null | components["schemas"]["Stored"];
        };
        /**
         * @description The variables a template may use.
         * @enum {string}
         */
        Variable: "customer_name" | "amount" | "currency" | "due_date" | "invoice_number" | "company_name" | "payment_link";
        VodacomRequest: {
            /** @description The application's API key in Vodacom's developer portal. */
            api_key: string;
            /** @description `vodacomTZN` (the default, and the only market supported). */
            market?: string | null;
            /** @description The portal's public key: base64 of its DER SubjectPublicKeyInfo. */
            public_key: string;
            /** @description `input_ServiceProviderCode`: 4-12 letters or digits. */
            service_provider_code: string;
        };
        /** @description The Vodacom M-Pesa account in force, the API key masked. */
        VodacomView: {
            /** @description `****` and the last four characters. */
            api_key?: string | null;
            market?: string | null;
            /** @description The public key (public: shown whole). */
            public_key?: string | null;
            service_provider_code?: string | null;
            source?: null | components["schemas"]["CredentialsSource"];
            stored?: null | components["schemas"]["Stored"];
        };
    };
    responses: never;
    parameters: never;
    requestBodies: never;
    headers: never;
    pathItems: never;
}
export type $defs = Record<string, never>;
export type operations = Record<string, never>;
