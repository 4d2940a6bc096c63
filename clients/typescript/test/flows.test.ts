// The CRM's flows through the client, against a real `copcca-sms run` and the fake providers
// (started by scripts/with-service, which gives the environment below). The providers act as
// the real ones would: the fake Daraja prompts the phone and posts M-Pesa's callback itself, the
// fake Stripe posts the signed `checkout.session.completed` once the buyer pays on the hosted
// page (its one HTTP test driver), and the operator approves a bank transfer through the admin API.
// One company for the whole file, so the tests run in order and compare balances by difference.

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, test } from "node:test";

import { CopccaSmsError, FollowTimeout, SmsClient, type BatchProgress, type Purchase } from "../src/index.js";

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests through scripts/with-service`);
  return value;
}

const baseUrl = env("COPCCA_BASE_URL");
const sms = new SmsClient({ baseUrl, token: env("COPCCA_TOKEN"), pollIntervalMs: 200 });
const operator = new SmsClient({ baseUrl, token: env("COPCCA_OPERATOR_TOKEN") });
const follow = { timeoutMs: 60_000 };

/** The buyer pays on Stripe's hosted page; the fake posts the signed event to the service. */
async function payAtStripe(purchase: Purchase): Promise<void> {
  assert.ok(purchase.checkout_url, "a card purchase has a checkout page");
  const session = new URL(purchase.checkout_url).pathname.split("/").pop();
  const answer = await fetch(new URL(`_fake/checkout/sessions/${session}/pay`, env("FAKE_STRIPE_BASE")), {
    method: "POST",
  });
  assert.equal(answer.status, 200);
  const delivery = (await answer.json()) as { status: number };
  assert.equal(delivery.status, 200, "the service accepted Stripe's webhook");
}

async function available(): Promise<number> {
  return (await sms.balance()).available;
}

/** The service refuses with this status and code (and the client says so, typed). */
async function assertProblem(call: Promise<unknown>, status: number, code: string): Promise<CopccaSmsError> {
  const error = await call.then(
    () => assert.fail(`expected ${status} ${code}`),
    (e: unknown) => e,
  );
  assert.ok(error instanceof CopccaSmsError, String(error));
  assert.equal(error.status, status);
  assert.equal(error.code, code);
  assert.equal(error.problem.status, status);
  return error;
}

describe("buying credits", () => {
  test("by M-Pesa: the phone is prompted, the callback verified, the purchase credited", async () => {
    const before = await available();
    const started = await sms.buyCredits({ method: "mpesa", package_id: "starter", phone: "0712345678" });
    assert.equal(started.method, "mpesa");
    assert.equal(started.currency, "KES");
    assert.ok(["initiated", "pending"].includes(started.status), started.status);

    const seen: string[] = [];
    const credited = await sms.followPurchase(started.id, { ...follow, onUpdate: (p) => seen.push(p.status) });
    assert.equal(credited.status, "credited");
    assert.ok(credited.receipt, "the M-Pesa receipt is kept");
    assert.equal(seen.at(-1), "credited");
    assert.equal(await available(), before + credited.credits);
  });

  test("by card: Stripe Checkout, the webhook, the purchase credited", async () => {
    const before = await available();
    const started = await sms.buyCredits({ method: "card", package_id: "business" });
    assert.equal(started.status, "pending");
    await payAtStripe(started);
    const credited = await sms.followPurchase(started.id, follow);
    assert.equal(credited.status, "credited");
    assert.equal(credited.credits, 500);
    assert.equal(await available(), before + 500);
  });

  test("by bank transfer: pending until the operator approves, then credited", async () => {
    const before = await available();
    const started = await sms.buyCredits({ method: "bank_transfer", package_id: "starter" });
    assert.equal(started.status, "pending");
    assert.ok(started.bank?.reference.startsWith("SMS-"), JSON.stringify(started.bank));

    // Nobody has approved it: following it runs out of time, and says where it was.
    const waited = await sms.followPurchase(started.id, { timeoutMs: 500 }).catch((e: unknown) => e);
    assert.ok(waited instanceof FollowTimeout);
    assert.equal((waited.last as Purchase).status, "pending");

    const approved = await operator.api.POST("/admin/purchases/{id}/approve", {
      params: { path: { id: started.id } },
      body: { amount: started.amount, currency: started.currency, bank_reference: `BANK-${randomUUID()}` },
    });
    assert.equal(approved.response.status, 200, JSON.stringify(approved.error));
    const credited = await sms.followPurchase(started.id, follow);
    assert.equal(credited.status, "credited");
    assert.equal(await available(), before + credited.credits);
  });

  test("an idempotency key buys once", async () => {
    const key = randomUUID();
    const first = await sms.buyCredits({ method: "bank_transfer", package_id: "pro" }, key);
    const again = await sms.buyCredits({ method: "bank_transfer", package_id: "pro" }, key);
    assert.equal(again.id, first.id);
  });

  test("refused input is a typed problem naming the field, and nothing is bought", async () => {
    const before = (await sms.api.GET("/v1/purchases")).data;
    // A Tanzanian number cannot pay through Daraja (Kenya).
    const phone = await assertProblem(
      sms.buyCredits({ method: "mpesa", package_id: "starter", phone: "+255754123456" }),
      422,
      "validation_failed",
    );
    assert.deepEqual(phone.problem.errors?.map((e) => e.field), ["phone"]);
    const unknown = await assertProblem(sms.buyCredits({ method: "card", package_id: "gold" }), 422, "validation_failed");
    assert.deepEqual(unknown.problem.errors?.map((e) => e.field), ["package_id"]);
    assert.deepEqual((await sms.api.GET("/v1/purchases")).data, before);
  });
});

describe("sending", () => {
  test("one reminder: accepted, sent, charged once", async () => {
    const before = await sms.balance();
    const queued = await sms.sendReminder(
      { to: "0712345678", body: "Habari Asha, invoice INV-7 of KES 2,000 is due tomorrow." },
      randomUUID(),
    );
    assert.equal(queued.status, "queued");
    assert.equal(queued.to, "+254712345678");
    assert.equal(queued.credits, 1);

    let message = await sms.message(queued.id);
    for (let i = 0; message.status === "queued" || message.status === "sending"; i++) {
      assert.ok(i < 300, `still ${message.status}`);
      await new Promise((r) => setTimeout(r, 200));
      message = await sms.message(queued.id);
    }
    assert.equal(message.status, "sent");
    assert.ok(message.provider_id?.startsWith("SM"), message.provider_id ?? "no SID");
    const after = await sms.balance();
    assert.equal(after.available, before.available - 1);
    assert.equal(after.total_sent, before.total_sent + 1);
  });

  test("a batch: refused entries by index, the rest sent, progress until done", async () => {
    const before = await available();
    const accepted = await sms.sendBatch({
      messages: [
        { to: "0712000001", body: "Reminder 1" },
        { to: "0712000002", template: "payment_reminder", vars: { customer_name: "Juma", amount: 15000, due_date: "2026-12-24", invoice_number: "INV-9", payment_link: "https://pay.example.co.ke" } },
        { to: "not a number", body: "Reminder 3" },
        { to: "0712000004", body: "Reminder 4" },
      ],
    });
    assert.equal(accepted.accepted, 3);
    assert.deepEqual(
      accepted.rejected.map((r) => [r.index, r.code]),
      [[2, "invalid_to"]],
    );

    const updates: BatchProgress[] = [];
    const done = await sms.followBatch(accepted.batch_id, { ...follow, onUpdate: (p) => updates.push(p) });
    assert.equal(done.done, true);
    assert.equal(done.settled, 3);
    assert.equal(done.report.by_status.sent, 3);
    assert.ok(updates.every((p, i) => i === 0 || p.settled >= updates[i - 1]!.settled), "progress only grows");
    assert.equal(await available(), before - done.report.credits_charged);
  });

  test("a batch the credits do not cover is refused whole, with what it needs", async () => {
    const balance = await available();
    const messages = Array.from({ length: balance + 1 }, (_, i) => ({
      to: `+2547120${String(i).padStart(5, "0")}`,
      body: "Too many",
    }));
    const error = await assertProblem(sms.sendBatch({ messages }), 409, "insufficient_credits");
    assert.equal((error.problem as { needed?: number }).needed, balance + 1);
    assert.equal(await available(), balance, "nothing was written");
  });
});

describe("balance and ledger", () => {
  test("the ledger pages back through every entry, and sums to the balance", async () => {
    const balance = await sms.balance();
    const first = await sms.ledger({ limit: 2 });
    assert.equal(first.entries.length, 2);
    assert.ok(first.next_before, "more than one page");

    const all = [];
    for await (const entry of sms.ledgerEntries(3)) all.push(entry);
    assert.deepEqual(all.slice(0, 2), first.entries);
    assert.deepEqual(
      all.map((e) => e.id),
      [...all.map((e) => e.id)].sort((a, b) => b - a),
      "newest first",
    );
    assert.equal(
      all.reduce((sum, e) => sum + e.available_delta, 0),
      balance.available,
    );
    assert.equal(
      all.reduce((sum, e) => sum + e.reserved_delta, 0),
      balance.reserved,
    );
    assert.ok(all.some((e) => e.kind === "purchase" && e.payment_id));
    assert.ok(all.some((e) => e.kind === "commit" && e.message_id));
  });

  test("a bad token is a typed 401", async () => {
    const stranger = new SmsClient({ baseUrl, token: "not-a-jwt" });
    await assertProblem(stranger.balance(), 401, "invalid_token");
  });
});
