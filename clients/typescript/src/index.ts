// The CRM's client of copcca-sms: the types are generated from the served /openapi.json
// (src/schema.ts, by scripts/generate; CI fails when they are stale), the calls go through
// openapi-fetch, and this file is the thin layer of the CRM's flows on top: buy credits and
// follow the purchase until credited, send a reminder, send a batch and follow its progress,
// read the balance and the ledger. Anything else is reachable, still typed, through `api`.

import createClient, { type Client } from "openapi-fetch";

import type { components, paths } from "./schema.js";

export type { components, paths } from "./schema.js";

type Schemas = components["schemas"];
export type Balance = Schemas["Balance"];
export type BatchAccepted = Schemas["BatchAccepted"];
export type BatchEntry = Schemas["BatchEntry"];
export type BatchReport = Schemas["BatchReport"];
export type BatchRequest = Schemas["BatchRequest"];
export type LedgerEntry = Schemas["Entry"];
export type LedgerPage = Schemas["LedgerPage"];
export type Message = Schemas["Message"];
export type MessageStatus = Schemas["MessageStatus"];
export type Package = Schemas["Package"];
export type Problem = Schemas["Problem"];
export type Purchase = Schemas["PurchaseView"];
export type PurchaseStatus = Schemas["Status"];
export type Queued = Schemas["Queued"];
export type Reminder = Schemas["SendRequest"];

/** What to buy: a package, and how to pay for it. */
export type CreditOrder =
  /** An M-Pesa prompt on this Kenyan phone (`0712345678` or `+254712345678`). */
  | { method: "mpesa"; package_id: string; phone: string; currency?: string }
  /** Stripe Checkout: send the buyer to the purchase's `checkout_url`. */
  | { method: "card"; package_id: string; currency?: string }
  /** A bank transfer quoting the purchase's `bank.reference`; an operator approves it. */
  | { method: "bank_transfer"; package_id: string; currency?: string };

/** Where a purchase stops moving (credited, or one of the ends before money arrived). */
export const SETTLED_PURCHASE: readonly PurchaseStatus[] = [
  "credited",
  "failed",
  "cancelled",
  "expired",
  "refunded",
];

/** A message the provider has not answered yet; every other status is the outcome of a send. */
export const UNSENT_MESSAGE: readonly MessageStatus[] = ["queued", "sending"];

/** An answer of the service other than success: its problem+json (RFC 9457). */
export class CopccaSmsError extends Error {
  readonly status: number;
  /** The stable snake_case code (`insufficient_credits`, `invalid_token`, ...). */
  readonly code: string;
  readonly problem: Problem;
  /** `Retry-After` in seconds, on a 429. */
  readonly retryAfter: number | undefined;

  constructor(response: Response, problem: Problem) {
    super(`${problem.status} ${problem.code}: ${problem.detail}`);
    this.name = "CopccaSmsError";
    this.status = response.status;
    this.code = problem.code;
    this.problem = problem;
    const retry = Number(response.headers.get("Retry-After"));
    this.retryAfter = Number.isFinite(retry) && retry > 0 ? retry : undefined;
  }
}

/** A follow that ran out of time; `last` is what the service said last. */
export class FollowTimeout<T> extends Error {
  constructor(
    readonly what: string,
    readonly last: T | undefined,
  ) {
    super(`${what}: still not settled when the wait ran out`);
    this.name = "FollowTimeout";
  }
}

export interface ClientOptions {
  /** The service, e.g. `https://sms.copcca.com` (no trailing `/v1`). */
  baseUrl: string;
  /** The end user's Supabase JWT (`Authorization: Bearer`), or ... */
  token?: string;
  /** ... a company API key (`csk_...`), for server-to-server callers. */
  apiKey?: string;
  /** How often the follow methods ask (default 1 s). */
  pollIntervalMs?: number;
  /** A `fetch` of your own (tests, instrumentation). */
  fetch?: typeof globalThis.fetch;
}

export interface FollowOptions<T> {
  /** Give up (with `FollowTimeout`) after this long; default 10 minutes. */
  timeoutMs?: number;
  /** Called with every answer, e.g. to draw a progress bar. */
  onUpdate?: (current: T) => void;
  /** Stops the follow (rejects with the signal's reason). */
  signal?: AbortSignal;
}

/** A batch's progress: how many of its accepted messages the provider has answered. */
export interface BatchProgress {
  report: BatchReport;
  /** Messages sent, delivered, failed or undelivered. */
  settled: number;
  accepted: number;
  done: boolean;
}

export class SmsClient {
  /** The generated, typed client of every endpoint (`api.GET("/v1/templates")`, ...). */
  readonly api: Client<paths>;
  private readonly pollIntervalMs: number;

  constructor(options: ClientOptions) {
    const headers: Record<string, string> = {};
    if (options.token !== undefined) headers.Authorization = `Bearer ${options.token}`;
    if (options.apiKey !== undefined) headers["X-API-Key"] = options.apiKey;
    this.api = createClient<paths>({
      baseUrl: options.baseUrl.replace(/\/+$/, ""),
      headers,
      ...(options.fetch ? { fetch: options.fetch } : {}),
    });
    this.pollIntervalMs = options.pollIntervalMs ?? 1000;
  }

  /** The packages on sale, with their prices per currency. */
  async packages(): Promise<Package[]> {
    return ok(await this.api.GET("/v1/packages"));
  }

  /**
   * Starts a purchase. The answer is `pending` (or `initiated`): credits arrive only once the
   * provider or the operator confirms the money; follow it with `followPurchase`. The same
   * `idempotencyKey` returns the same purchase, so a retry never buys twice.
   */
  async buyCredits(order: CreditOrder, idempotencyKey?: string): Promise<Purchase> {
    return ok(
      await this.api.POST("/v1/purchases", {
        body: order,
        params: { header: idempotencyHeader(idempotencyKey) },
      }),
    );
  }

  async purchase(id: string): Promise<Purchase> {
    return ok(await this.api.GET("/v1/purchases/{id}", { params: { path: { id } } }));
  }

  /** Asks until the purchase is credited or has ended (see `SETTLED_PURCHASE`); answers it. */
  async followPurchase(id: string, options: FollowOptions<Purchase> = {}): Promise<Purchase> {
    return this.follow(`purchase ${id}`, () => this.purchase(id), isSettledPurchase, options);
  }

  /** Accepts one reminder (202 `queued`); it is sent, charged once, and refunded if it fails. */
  async sendReminder(reminder: Reminder, idempotencyKey?: string): Promise<Queued> {
    return ok(
      await this.api.POST("/v1/messages", {
        body: reminder,
        params: { header: idempotencyHeader(idempotencyKey) },
      }),
    );
  }

  async message(id: string): Promise<Message> {
    return ok(await this.api.GET("/v1/messages/{id}", { params: { path: { id } } }));
  }

  /**
   * Accepts a batch: entries refused one by one are in `rejected` (by index); without
   * `allow_partial`, credits short for the whole batch are a `CopccaSmsError`
   * `insufficient_credits` and nothing is written.
   */
  async sendBatch(batch: BatchRequest, idempotencyKey?: string): Promise<BatchAccepted> {
    return ok(
      await this.api.POST("/v1/messages/batch", {
        body: batch,
        params: { header: idempotencyHeader(idempotencyKey) },
      }),
    );
  }

  async batch(id: string): Promise<BatchProgress> {
    const report = ok(await this.api.GET("/v1/batches/{id}", { params: { path: { id } } }));
    return progressOf(report);
  }

  /** Asks until every accepted message of the batch has been answered by the provider. */
  async followBatch(id: string, options: FollowOptions<BatchProgress> = {}): Promise<BatchProgress> {
    return this.follow(`batch ${id}`, () => this.batch(id), (p) => p.done, options);
  }

  async balance(): Promise<Balance> {
    return ok(await this.api.GET("/v1/balance"));
  }

  /** One page of the ledger, newest first; pass `next_before` as `before` for the next. */
  async ledger(page: { limit?: number; before?: number } = {}): Promise<LedgerPage> {
    return ok(await this.api.GET("/v1/ledger", { params: { query: page } }));
  }

  /** Every ledger entry, newest first, a page at a time. */
  async *ledgerEntries(pageSize = 200): AsyncGenerator<LedgerEntry> {
    let before: number | undefined;
    do {
      const page = await this.ledger(before === undefined ? { limit: pageSize } : { limit: pageSize, before });
      yield* page.entries;
      before = page.next_before ?? undefined;
    } while (before !== undefined);
  }

  /** Polls `read` until `done`; a 429 waits its `Retry-After` instead of failing the follow. */
  private async follow<T>(
    what: string,
    read: () => Promise<T>,
    done: (current: T) => boolean,
    { timeoutMs = 600_000, onUpdate, signal }: FollowOptions<T>,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: T | undefined;
    for (;;) {
      signal?.throwIfAborted();
      let wait = this.pollIntervalMs;
      try {
        last = await read();
        onUpdate?.(last);
        if (done(last)) return last;
      } catch (e) {
        if (!(e instanceof CopccaSmsError && e.status === 429)) throw e;
        wait = Math.max(wait, (e.retryAfter ?? 1) * 1000);
      }
      if (Date.now() + wait > deadline) throw new FollowTimeout(what, last);
      await sleep(wait, signal);
    }
  }
}

export function isSettledPurchase(purchase: Purchase): boolean {
  return SETTLED_PURCHASE.includes(purchase.status);
}

function progressOf(report: BatchReport): BatchProgress {
  let unsent = 0;
  let counted = 0;
  for (const [status, count] of Object.entries(report.by_status)) {
    counted += count;
    if ((UNSENT_MESSAGE as readonly string[]).includes(status)) unsent += count;
  }
  const settled = counted - unsent;
  return { report, settled, accepted: report.accepted, done: unsent === 0 && settled >= report.accepted };
}

function idempotencyHeader(key: string | undefined): { "Idempotency-Key"?: string } {
  return key === undefined ? {} : { "Idempotency-Key": key };
}

/** openapi-fetch's answer: the data, or the service's problem as a `CopccaSmsError`. */
function ok<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.data !== undefined && result.response.ok) return result.data;
  throw new CopccaSmsError(result.response, asProblem(result.error, result.response));
}

function asProblem(error: unknown, response: Response): Problem {
  if (typeof error === "object" && error !== null && "code" in error) return error as Problem;
  // Not problem+json (a proxy's page, an empty body): keep what can be told.
  return {
    type: "about:blank",
    title: response.statusText,
    status: response.status,
    detail: typeof error === "string" ? error : response.statusText,
    code: "unexpected_response",
  };
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}
