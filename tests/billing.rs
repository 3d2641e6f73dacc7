//! Billing through the router, as a client uses it: the catalogue, subscribing with Stripe's test payment
//! methods (played by the local provider, whose signed webhooks arrive late, shuffled and twice), idempotency
//! keys under 50 concurrent calls, renewals and dunning on a moved test clock, a prorated upgrade, the webhook
//! endpoint's signature rules, and a crash between the charge and its record resolved by the reconciliation.

use parley_harness as support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{codes, eventually, Account, Options, Platform};

const SECRET: &str = "whsec_the_billing_tests_local_secret";
const SUBSCRIBE: &str = "mutation($p: ID!, $m: String!, $k: String!) { subscribe(planId: $p, paymentMethodId: $m, idempotencyKey: $k) { id status failureReason cancelAtPeriodEnd currentPeriodStart currentPeriodEnd plan { code } } }";
const ME: &str = "{ me { id plan { code } entitlements { key limit } billingSubscription { id status failureReason cancelAtPeriodEnd currentPeriodStart currentPeriodEnd plan { code } pendingPlan { code } } invoices(first: 20) { edges { node { id amountCents currency status reason paidAt } } } } }";

fn settings(extra: &[(&str, toml::Value)]) -> toml::Table {
    let mut t = toml::Table::new();
    t.insert("local_webhook_secret".into(), SECRET.into());
    t.insert("test_clock".into(), true.into());
    t.insert("tick_ms".into(), 200.into());
    for (k, v) in extra {
        t.insert((*k).into(), v.clone());
    }
    t
}

async fn start(extra: &[(&str, toml::Value)]) -> Platform {
    start_on(support::Store::Sqlite, extra).await
}

async fn start_on(store: support::Store, extra: &[(&str, toml::Value)]) -> Platform {
    Platform::start_opts(Options {
        store: Some(store),
        billing: Some(settings(extra)),
        ..Default::default()
    })
    .await
}

async fn subscribe(
    p: &Platform,
    who: &Account,
    plan: &str,
    method: &str,
    key: &str,
) -> (u16, Value) {
    p.gql(
        SUBSCRIBE,
        json!({ "p": plan, "m": method, "k": key }),
        Some(&who.access),
    )
    .await
}

async fn me(p: &Platform, who: &Account) -> Value {
    p.ok(ME, json!({}), Some(&who.access)).await["me"].clone()
}

fn invoices(me: &Value) -> Vec<Value> {
    me["invoices"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

/// Moves billing's test clock ahead (on the subgraph: the router does not forward this) and runs its jobs.
async fn advance(p: &Platform, seconds: i64) {
    let url = format!("{}/billing/test-clock", p.subgraph_url("billing"));
    let response = reqwest::Client::new()
        .post(url)
        .json(&json!({ "seconds": seconds }))
        .send()
        .await
        .expect("billing reachable");
    assert!(response.status().is_success(), "{}", response.status());
}

async fn status_becomes(p: &Platform, who: &Account, status: &str) -> Value {
    eventually(&format!("subscription {status}"), || async {
        let me = me(p, who).await;
        (me["billingSubscription"]["status"] == status).then_some(me)
    })
    .await
}

async fn report(p: &Platform, admin: &Account) -> Value {
    p.ok(
        "query($f: DateTime!, $t: DateTime!) { billingReport(from: $f, to: $t) { netRevenueCents mrrCents churned byPlan { planCode chargedCents refundedCents activeSubscriptions mrrCents churned } } }",
        json!({ "f": "2020-01-01T00:00:00Z", "t": "2029-12-31T00:00:00Z" }),
        Some(&admin.access),
    )
    .await["billingReport"]
        .clone()
}

#[tokio::test]
async fn a_card_that_works_makes_the_plan_and_its_entitlements_yours() {
    let p = start(&[]).await;
    let plans = p
        .ok(
            "{ plans { id code priceCents currency interval entitlements { key limit } } }",
            json!({}),
            None,
        )
        .await;
    let ids: Vec<&str> = plans["plans"]
        .as_array()
        .expect("plans")
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        ["free", "plus-month", "plus-year", "pro-month", "pro-year"]
    );
    assert_eq!(plans["plans"][3]["priceCents"], 1500);

    let ann = p.register("ann").await;
    let before = me(&p, &ann).await;
    assert_eq!(before["plan"]["code"], "FREE");
    assert!(before["billingSubscription"].is_null());
    assert_eq!(
        before["entitlements"],
        json!([{"key": "media.max_upload_mb", "limit": 10}, {"key": "chat.max_group_members", "limit": 50}])
    );

    let (status, body) = subscribe(&p, &ann, "pro-month", "pm_card_visa", "ann-1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["subscribe"]["status"], "ACTIVE", "{body}");
    let after = me(&p, &ann).await;
    assert_eq!(after["plan"]["code"], "PRO");
    assert!(after["entitlements"]
        .as_array()
        .expect("list")
        .contains(&json!({"key": "assistant", "limit": null})));
    let paid = invoices(&after);
    assert_eq!(paid.len(), 1);
    assert_eq!(
        (paid[0]["amountCents"].clone(), paid[0]["status"].clone()),
        (json!(1500), json!("PAID"))
    );

    // Someone else's billing is not theirs to read.
    let bob = p.register("bob").await;
    let (_, body) = p
        .gql(
            "query($id: ID!) { user(id: $id) { plan { code } } }",
            json!({ "id": ann.id }),
            Some(&bob.access),
        )
        .await;
    assert!(codes(&body).contains(&"FORBIDDEN".to_string()), "{body}");
    // Subscribing again is a CONFLICT: changing plans is changePlan's.
    let (_, body) = subscribe(&p, &ann, "plus-month", "pm_card_visa", "ann-2").await;
    assert_eq!(codes(&body), ["CONFLICT"], "{body}");
}

#[tokio::test]
async fn declined_cards_and_bad_input_leave_nothing_granted() {
    let p = start(&[]).await;
    let cat = p.register("cat").await;
    let (_, body) = subscribe(&p, &cat, "plus-month", "pm_card_chargeDeclined", "c-1").await;
    assert_eq!(body["data"]["subscribe"]["status"], "INCOMPLETE", "{body}");
    assert_eq!(
        body["data"]["subscribe"]["failureReason"],
        "Your card was declined."
    );
    let (_, body) = subscribe(
        &p,
        &cat,
        "plus-month",
        "pm_card_chargeDeclinedInsufficientFunds",
        "c-2",
    )
    .await;
    assert_eq!(
        body["data"]["subscribe"]["failureReason"], "Your card has insufficient funds.",
        "{body}"
    );
    let (_, body) = subscribe(
        &p,
        &cat,
        "plus-month",
        "pm_card_authenticationRequired",
        "c-3",
    )
    .await;
    assert_eq!(body["data"]["subscribe"]["status"], "INCOMPLETE", "{body}");
    let now = me(&p, &cat).await;
    assert_eq!(now["plan"]["code"], "FREE");
    assert_eq!(now["entitlements"].as_array().map(Vec::len), Some(2));

    for (plan, method, key) in [
        ("gold-month", "pm_card_visa", "c-4"),
        ("free", "pm_card_visa", "c-5"),
        ("plus-month", "pm_card_nope", "c-6"),
        ("plus-month", "tok_visa", "c-7"),
        ("plus-month", "pm_card_visa", ""),
        ("plus-month", "pm_card_visa", &"k".repeat(256)),
    ] {
        let (_, body) = subscribe(&p, &cat, plan, method, key).await;
        assert_eq!(
            codes(&body),
            ["BAD_USER_INPUT"],
            "{plan} {method} {key}: {body}"
        );
    }
    let (_, body) = p
        .gql(
            SUBSCRIBE,
            json!({ "p": "plus-month", "m": "pm_card_visa", "k": "anon" }),
            None,
        )
        .await;
    assert_eq!(codes(&body), ["UNAUTHENTICATED"], "{body}");

    // A working card supersedes the incomplete attempt.
    let (_, body) = subscribe(&p, &cat, "plus-month", "pm_card_visa", "c-8").await;
    assert_eq!(body["data"]["subscribe"]["status"], "ACTIVE", "{body}");
    assert_eq!(me(&p, &cat).await["plan"]["code"], "PLUS");

    // An attempt left unpaid expires after a day (Stripe's incomplete_expired); its invoice is void.
    let ida = p.register("ida").await;
    subscribe(&p, &ida, "plus-month", "pm_card_chargeDeclined", "i-1").await;
    advance(&p, 24 * 3600).await;
    let expired = status_becomes(&p, &ida, "CANCELED").await;
    assert_eq!(invoices(&expired)[0]["status"], "VOID");
}

#[tokio::test]
async fn fifty_concurrent_calls_with_one_key_charge_once() {
    one_key_many_calls(start(&[]).await).await;
}

#[tokio::test]
async fn fifty_concurrent_calls_with_one_key_charge_once_on_postgres() {
    one_key_many_calls(start_on(support::Store::Postgres, &[]).await).await;
}

/// 50 concurrent `subscribe` calls with one key: one charge, one subscription, 50 identical answers;
/// and two keys racing for one user: one subscription, the other call a CONFLICT.
async fn one_key_many_calls(p: Platform) {
    let dan = p.register("dan").await;
    let calls = (0..50).map(|_| subscribe(&p, &dan, "pro-year", "pm_card_visa", "dan-once"));
    let answers = futures::future::join_all(calls).await;
    let first = answers[0].1["data"]["subscribe"].clone();
    assert_eq!(first["status"], "ACTIVE", "{:?}", answers[0]);
    for (status, body) in &answers {
        assert_eq!(*status, 200);
        assert_eq!(
            body["data"]["subscribe"], first,
            "every answer is the first"
        );
    }
    let now = me(&p, &dan).await;
    assert_eq!(invoices(&now).len(), 1, "one invoice, one charge");
    // The same key with other arguments is a CONFLICT.
    let (_, body) = subscribe(&p, &dan, "plus-year", "pm_card_visa", "dan-once").await;
    assert_eq!(codes(&body), ["CONFLICT"], "{body}");

    let admin = p.register_admin().await;
    let report = report(&p, &admin).await;
    let pro = report["byPlan"]
        .as_array()
        .expect("plans")
        .iter()
        .find(|r| r["planCode"] == "PRO")
        .cloned()
        .expect("PRO revenue");
    assert_eq!(
        pro["chargedCents"], 15_000,
        "charged exactly once: {report}"
    );
    assert_eq!(pro["mrrCents"], 1_250);
    let (_, body) = p
        .gql(
            "{ billingReport(from: \"2020-01-01T00:00:00Z\", to: \"2021-01-01T00:00:00Z\") { mrrCents } }",
            json!({}),
            Some(&dan.access),
        )
        .await;
    assert_eq!(codes(&body), ["FORBIDDEN"], "{body}");

    // Two keys racing for one user: one subscription starts, every other call is a CONFLICT.
    let kim = p.register("kim").await;
    let keys: Vec<String> = (0..10).map(|i| format!("kim-{i}")).collect();
    let calls = keys
        .iter()
        .map(|k| subscribe(&p, &kim, "plus-month", "pm_card_visa", k));
    let answers = futures::future::join_all(calls).await;
    let active = answers
        .iter()
        .filter(|(_, b)| b["data"]["subscribe"]["status"] == "ACTIVE")
        .count();
    let conflicts = answers
        .iter()
        .filter(|(_, b)| codes(b) == ["CONFLICT"])
        .count();
    assert_eq!((active, conflicts), (1, 9), "{answers:?}");
    assert_eq!(invoices(&me(&p, &kim).await).len(), 1);
}

#[tokio::test]
async fn renewals_dunning_and_the_end_of_a_subscription_follow_the_clock() {
    let retry = toml::Value::Array(vec![1.into(), 2.into()]);
    // Digests each second, to read the dunning mails.
    let mut digests = toml::Table::new();
    digests.insert("digest_seconds".into(), 1.into());
    let p = Platform::start_opts(Options {
        billing: Some(settings(&[("retry_hours", retry)])),
        notifications: Some(digests),
        ..Default::default()
    })
    .await;
    // A card that keeps working renews for another period.
    let eve = p.register("eve").await;
    let (_, body) = subscribe(&p, &eve, "plus-month", "pm_card_visa", "e-1").await;
    let first_end = body["data"]["subscribe"]["currentPeriodEnd"].clone();
    // A card whose later charges fail: renewal → PAST_DUE → a retry → CANCELED.
    let fay = p.register("fay").await;
    p.verify_email(&fay.email).await;
    let (_, body) = subscribe(&p, &fay, "plus-month", "pm_card_chargeCustomerFail", "f-1").await;
    assert_eq!(body["data"]["subscribe"]["status"], "ACTIVE", "{body}");

    // A minute past the period's end: renewals are due, the first dunning retry (an hour later) not yet.
    let end = chrono::DateTime::parse_from_rfc3339(first_end.as_str().expect("end")).expect("time");
    advance(
        &p,
        (end.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds() + 60,
    )
    .await;
    let renewed = eventually("eve renewed", || async {
        let me = me(&p, &eve).await;
        (invoices(&me).len() == 2 && invoices(&me)[0]["status"] == "PAID").then_some(me)
    })
    .await;
    assert_eq!(renewed["billingSubscription"]["status"], "ACTIVE");
    assert_eq!(
        renewed["billingSubscription"]["currentPeriodStart"],
        first_end
    );
    assert_eq!(invoices(&renewed)[0]["reason"], "SUBSCRIPTION_CYCLE");

    let past_due = status_becomes(&p, &fay, "PAST_DUE").await;
    assert_eq!(
        past_due["billingSubscription"]["failureReason"],
        "Your card was declined."
    );
    assert_eq!(
        past_due["plan"]["code"], "PLUS",
        "dunning keeps the plan until it ends"
    );
    advance(&p, 3600 + 60).await; // the first retry fails too
    advance(&p, 3600 + 60).await; // the second, the last: the end
    let ended = status_becomes(&p, &fay, "CANCELED").await;
    assert_eq!(ended["plan"]["code"], "FREE");
    let cycle = &invoices(&ended)[0];
    assert_eq!(
        (cycle["reason"].clone(), cycle["status"].clone()),
        (json!("SUBSCRIPTION_CYCLE"), json!("UNCOLLECTIBLE"))
    );
    // A notice each: the renewal's failure, both retries', and the end — and mailed.
    billing_notices(&p, &fay, 4).await;
    for said in [
        "A payment for your subscription failed",
        "Your subscription ended",
    ] {
        eventually(said, || async {
            p.mails()
                .into_iter()
                .find(|m| m.contains(&fay.email) && m.contains(said))
        })
        .await;
    }

    // Cancel at period end, resume, cancel again: it ends when the period does.
    let key = |k: &str| json!({ "k": k });
    p.ok(
        "mutation($k: String!) { cancelSubscription(idempotencyKey: $k) { cancelAtPeriodEnd } }",
        key("e-2"),
        Some(&eve.access),
    )
    .await;
    let resumed = p.ok("mutation($k: String!) { resumeSubscription(idempotencyKey: $k) { cancelAtPeriodEnd } }", key("e-3"), Some(&eve.access)).await;
    assert_eq!(resumed["resumeSubscription"]["cancelAtPeriodEnd"], false);
    p.ok("mutation($k: String!) { cancelSubscription(atPeriodEnd: true, idempotencyKey: $k) { cancelAtPeriodEnd } }", key("e-4"), Some(&eve.access)).await;
    assert_eq!(me(&p, &eve).await["plan"]["code"], "PLUS");
    advance(&p, 32 * 86_400).await;
    let gone = status_becomes(&p, &eve, "CANCELED").await;
    assert_eq!(gone["plan"]["code"], "FREE");
    assert_eq!(
        invoices(&gone).len(),
        2,
        "no invoice for a period that was not renewed"
    );
}

#[tokio::test]
async fn an_upgrade_mid_period_is_prorated_and_a_downgrade_waits() {
    let p = start(&[]).await;
    let gus = p.register("gus").await;
    let (_, body) = subscribe(&p, &gus, "plus-month", "pm_card_visa", "g-1").await;
    let sub = &body["data"]["subscribe"];
    let start =
        chrono::DateTime::parse_from_rfc3339(sub["currentPeriodStart"].as_str().expect("start"))
            .expect("time");
    let end = chrono::DateTime::parse_from_rfc3339(sub["currentPeriodEnd"].as_str().expect("end"))
        .expect("time");
    advance(&p, (end - start).num_seconds() / 2).await;
    let changed = p
        .ok(
            "mutation($k: String!) { changePlan(planId: \"pro-month\", idempotencyKey: $k) { status plan { code } currentPeriodEnd } }",
            json!({ "k": "g-2" }),
            Some(&gus.access),
        )
        .await;
    assert_eq!(changed["changePlan"]["plan"]["code"], "PRO");
    assert_eq!(
        changed["changePlan"]["currentPeriodEnd"], sub["currentPeriodEnd"],
        "same period"
    );
    let now = me(&p, &gus).await;
    let update = &invoices(&now)[0];
    assert_eq!(update["reason"], "SUBSCRIPTION_UPDATE");
    assert_eq!(update["status"], "PAID");
    // Half of (1500 − 500), give or take the seconds the test itself took.
    let amount = update["amountCents"].as_i64().expect("amount");
    assert!((495..=500).contains(&amount), "prorated: {amount}");

    let down = p
        .ok(
            "mutation($k: String!) { changePlan(planId: \"plus-month\", idempotencyKey: $k) { plan { code } pendingPlan { code } } }",
            json!({ "k": "g-3" }),
            Some(&gus.access),
        )
        .await;
    assert_eq!(
        down["changePlan"]["plan"]["code"], "PRO",
        "until the period ends"
    );
    assert_eq!(down["changePlan"]["pendingPlan"]["code"], "PLUS");
    advance(&p, (end - start).num_seconds()).await;
    let renewed = eventually("renewed on PLUS", || async {
        let me = me(&p, &gus).await;
        (invoices(&me).len() == 3 && invoices(&me)[0]["status"] == "PAID").then_some(me)
    })
    .await;
    assert_eq!(renewed["plan"]["code"], "PLUS");
    assert_eq!(invoices(&renewed)[0]["amountCents"], 500);
}

#[tokio::test]
async fn webhooks_are_verified_deduplicated_and_harmless_when_unknown() {
    let p = start(&[]).await;
    let url = format!(
        "{}/billing/webhooks/local",
        p.graphql_url().trim_end_matches("/graphql")
    );
    let http = reqwest::Client::new();
    let post = |body: String, signature: String| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            http.post(url)
                .header("content-type", "application/json")
                .header("stripe-signature", signature)
                .body(body)
                .send()
                .await
                .expect("router reachable")
                .status()
                .as_u16()
        }
    };
    let now = chrono::Utc::now().timestamp();
    let sign = |t: i64, body: &str| parley_billing::signature::header(SECRET, t, body.as_bytes());
    let unknown = json!({"id": "evt_unknown", "type": "payment_intent.succeeded", "data": {"object": {
        "id": "pi_x", "status": "succeeded", "metadata": {"parley_payment_id": uuid::Uuid::now_v7().to_string()}}}})
    .to_string();
    assert_eq!(
        post(unknown.clone(), "t=1,v1=00".into()).await,
        400,
        "bad signature"
    );
    assert_eq!(
        post(unknown.clone(), sign(now - 301, &unknown)).await,
        400,
        "stale"
    );
    assert_eq!(post(unknown.clone(), String::new()).await, 400, "unsigned");
    assert_eq!(
        post(unknown.clone(), sign(now, &unknown)).await,
        200,
        "unknown object: logged, 200"
    );
    assert_eq!(
        post(unknown.clone(), sign(now, &unknown)).await,
        200,
        "replay"
    );

    // A late, contradicting event for a settled payment changes nothing.
    let hal = p.register("hal").await;
    subscribe(&p, &hal, "plus-month", "pm_card_visa", "h-1").await;
    let before = me(&p, &hal).await;
    let payments = parley_billing_payments(&p, &hal).await;
    let failed =
        json!({"id": "evt_late", "type": "payment_intent.payment_failed", "data": {"object": {
        "id": "pi_late", "status": "requires_payment_method",
        "metadata": {"parley_payment_id": payments[0]},
        "last_payment_error": {"code": "card_declined", "message": "Your card was declined."}}}})
        .to_string();
    assert_eq!(post(failed.clone(), sign(now, &failed)).await, 200);
    tokio::time::sleep(Duration::from_millis(600)).await; // the provider's own webhooks land meanwhile
    assert_eq!(me(&p, &hal).await, before);
}

/// The payment ids of `who`'s invoices, read from billing's store as an operator would (clients never see
/// payment ids).
async fn parley_billing_payments(p: &Platform, who: &Account) -> Vec<String> {
    use parley_billing::store::payment;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    let config = p.config_of("billing", "billing");
    let db = sea_orm::Database::connect(config.database_url())
        .await
        .expect("billing store");
    let user = uuid::Uuid::parse_str(&who.id).expect("user id");
    payment::Entity::find()
        .filter(payment::Column::UserId.eq(user))
        .order_by_asc(payment::Column::CreatedAt)
        .all(&db)
        .await
        .expect("payments")
        .into_iter()
        .map(|row| row.id.to_string())
        .collect()
}

#[tokio::test]
async fn a_crash_after_the_charge_is_completed_by_the_reconciliation() {
    // Webhooks go nowhere, so only the reconciliation can learn the outcome.
    let mut p = start(&[
        ("fault", "hang_after_charge".into()),
        (
            "local_webhook_url",
            "http://127.0.0.1:9/billing/webhooks/local".into(),
        ),
    ])
    .await;
    let ivy = p.register("ivy").await;
    let call = tokio::time::timeout(
        Duration::from_secs(3),
        subscribe(&p, &ivy, "pro-month", "pm_card_visa", "ivy-1"),
    )
    .await;
    assert!(call.is_err(), "the call hangs after the charge: {call:?}");
    p.stop_subgraph("billing").await;
    let billing = p
        .spawn_instance_with("billing", |config| {
            let section = config
                .sections
                .get_mut("billing")
                .and_then(|s| s.as_table_mut())
                .expect("billing section");
            section.remove("fault");
            section.insert("reconcile_after_secs".into(), 0.into());
        })
        .await;
    let router = p.start_router(&[("billing", &billing)]).await;
    let client = Platform::client_of(&router.url);
    let done = eventually("reconciled", || async {
        let (_, body) = client.gql(ME, json!({}), Some(&ivy.access)).await;
        (body["data"]["me"]["billingSubscription"]["status"] == "ACTIVE").then_some(body)
    })
    .await;
    let me = &done["data"]["me"];
    assert_eq!(me["plan"]["code"], "PRO");
    assert_eq!(invoices(me).len(), 1);
    // The same key now answers with the subscription, and nothing was charged twice.
    let (_, again) = client
        .gql(
            SUBSCRIBE,
            json!({ "p": "pro-month", "m": "pm_card_visa", "k": "ivy-1" }),
            Some(&ivy.access),
        )
        .await;
    assert_eq!(again["data"]["subscribe"]["status"], "ACTIVE", "{again}");
    assert_eq!(parley_billing_payments(&p, &ivy).await.len(), 1);
}

#[tokio::test]
async fn entitlements_reach_media_and_chat_and_leave_with_the_subscription() {
    let p = start(&[]).await;
    let joe = p.register("joe").await;
    let names: Vec<String> = (0..50).map(|i| format!("member{i}")).collect();
    let others: Vec<Account> = futures::future::join_all(names.iter().map(|n| p.register(n))).await;
    let ids: Vec<String> = others.iter().map(|a| a.id.clone()).collect();
    let fifty_mb = 50 * 1024 * 1024;
    let upload = json!({ "fileName": "big.png", "contentType": "image/png", "size": fifty_mb, "purpose": "POST" });
    let create_upload =
        "mutation($i: CreateUploadInput!) { createUpload(input: $i) { uploadUrl } }";
    let group = "mutation($m: [ID!]!) { createGroupChat(title: \"Club\", memberIds: $m) { id } }";

    // FREE: 10 MB uploads, groups of 50.
    let (_, body) = p
        .gql(create_upload, json!({ "i": upload }), Some(&joe.access))
        .await;
    assert_eq!(codes(&body), ["BAD_USER_INPUT"], "{body}");
    // Chat learns of new accounts from users' events: until it knows all fifty, a group of them is NOT_FOUND.
    let body = eventually("chat knows the fifty members", || async {
        let (_, body) = p.gql(group, json!({ "m": ids }), Some(&joe.access)).await;
        (codes(&body) != ["NOT_FOUND"]).then_some(body)
    })
    .await;
    assert_eq!(
        codes(&body),
        ["BAD_USER_INPUT"],
        "51 members on FREE: {body}"
    );

    let (_, body) = subscribe(&p, &joe, "plus-month", "pm_card_visa", "j-1").await;
    assert_eq!(body["data"]["subscribe"]["status"], "ACTIVE", "{body}");
    // Media and chat learn it from billing's events.
    let mut bytes = parley_media::fixtures::png(64, 48);
    bytes.resize(fifty_mb, 0);
    eventually("media takes 50 MB", || async {
        let (_, body) = p
            .gql(create_upload, json!({ "i": upload }), Some(&joe.access))
            .await;
        body.get("errors").is_none().then_some(())
    })
    .await;
    let (_, put) = p.upload(&joe, upload.clone(), bytes).await;
    assert_eq!(put, 204, "the 50 MB body is taken");
    let chat = eventually("a group of 51", || async {
        let (_, body) = p.gql(group, json!({ "m": ids }), Some(&joe.access)).await;
        body["data"]["createGroupChat"]["id"]
            .as_str()
            .map(str::to_string)
    })
    .await;

    // Canceled now: back to FREE — the group keeps its members but cannot grow, uploads shrink again.
    p.ok(
        "mutation($k: String!) { cancelSubscription(atPeriodEnd: false, idempotencyKey: $k) { status } }",
        json!({ "k": "j-2" }),
        Some(&joe.access),
    )
    .await;
    let late = p.register("late").await;
    eventually("the group cannot grow", || async {
        let (_, body) = p
            .gql(
                "mutation($c: ID!, $u: ID!) { addChatMember(chatId: $c, userId: $u) { id } }",
                json!({ "c": chat, "u": late.id }),
                Some(&joe.access),
            )
            .await;
        (codes(&body) == ["BAD_USER_INPUT"]).then_some(())
    })
    .await;
    let (_, body) = p
        .gql(create_upload, json!({ "i": upload }), Some(&joe.access))
        .await;
    assert_eq!(codes(&body), ["BAD_USER_INPUT"], "{body}");
    let members = p
        .ok(
            "query($c: ID!) { chat(id: $c) { members { id } } }",
            json!({ "c": chat }),
            Some(&joe.access),
        )
        .await;
    assert_eq!(
        members["chat"]["members"].as_array().map(Vec::len),
        Some(51),
        "existing members stay"
    );
}

#[tokio::test]
async fn a_payment_made_for_a_subscription_canceled_meanwhile_is_refunded() {
    // The charge is made but its record never happens (the call hangs, webhooks go nowhere); the user
    // cancels meanwhile; the reconciliation finds the charge and gives the money back.
    let p = start(&[
        ("fault", "hang_after_charge".into()),
        (
            "local_webhook_url",
            "http://127.0.0.1:9/billing/webhooks/local".into(),
        ),
        ("reconcile_after_secs", 5.into()),
    ])
    .await;
    let lea = p.register("lea").await;
    let call = tokio::time::timeout(
        Duration::from_secs(1),
        subscribe(&p, &lea, "plus-month", "pm_card_visa", "lea-1"),
    )
    .await;
    assert!(call.is_err(), "the call hangs after the charge");
    let (_, body) = subscribe(&p, &lea, "plus-month", "pm_card_visa", "lea-2").await;
    assert_eq!(
        codes(&body),
        ["CONFLICT"],
        "a payment in flight is awaited: {body}"
    );
    let canceled = p
        .ok(
            "mutation($k: String!) { cancelSubscription(atPeriodEnd: false, idempotencyKey: $k) { status } }",
            json!({ "k": "lea-3" }),
            Some(&lea.access),
        )
        .await;
    assert_eq!(canceled["cancelSubscription"]["status"], "CANCELED");
    let admin = p.register_admin().await;
    let plus = eventually("charged and refunded", || async {
        let report = report(&p, &admin).await;
        let plus = report["byPlan"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["planCode"] == "PLUS").cloned())?;
        (plus["refundedCents"] == -500).then_some(plus)
    })
    .await;
    assert_eq!(plus["chargedCents"], 500, "charged once: {plus}");
    let now = me(&p, &lea).await;
    assert_eq!(now["plan"]["code"], "FREE", "never granted");
    assert_eq!(invoices(&now)[0]["status"], "VOID");
    billing_notices(&p, &lea, 1).await;
}

/// Waits until `who` has `n` BILLING notifications.
async fn billing_notices(p: &Platform, who: &Account, n: usize) {
    eventually(&format!("{n} billing notifications"), || async {
        let data = p
            .ok(
                "{ notifications(first: 50) { edges { node { kind } } } }",
                json!({}),
                Some(&who.access),
            )
            .await;
        let count = data["notifications"]["edges"]
            .as_array()
            .map(|e| e.iter().filter(|e| e["node"]["kind"] == "BILLING").count())
            .unwrap_or(0);
        (count == n).then_some(())
    })
    .await;
}

/// A local server speaking the part of Stripe's API the adapter uses, as documented: form-encoded POSTs
/// with a bearer secret key and an `Idempotency-Key` (the first response replayed for a repeated key),
/// PaymentIntents confirmed at once (402 with the error and intent for a decline), and a signed webhook
/// (`Stripe-Signature`) posted to the endpoint for each outcome, as Stripe does.
mod fake_stripe {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::post;
    use axum::{Json, Router};
    use serde_json::{json, Value};

    pub const KEY: &str = "sk_test_the_billing_tests";
    pub const WHSEC: &str = "whsec_the_billing_tests_stripe";

    #[derive(Default)]
    pub struct Seen {
        /// (Idempotency-Key, raw form body) of every POST /v1/payment_intents.
        pub intents: Vec<(String, String)>,
        /// The Idempotency-Key of every POST /v1/customers.
        pub customers: Vec<String>,
        replies: HashMap<String, (u16, Value)>,
    }

    #[derive(Clone)]
    struct Fake {
        seen: Arc<Mutex<Seen>>,
        /// Where webhooks go: the router's origin, known once the platform is up.
        webhook_url: Arc<Mutex<String>>,
    }

    fn form(body: &str) -> HashMap<String, String> {
        body.split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (decode(k), decode(v)))
            .collect()
    }

    fn decode(text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("hex");
                    out.push(u8::from_str_radix(hex, 16).expect("hex"));
                    i += 3;
                }
                b'+' => {
                    out.push(b' ');
                    i += 1;
                }
                b => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8(out).expect("utf-8")
    }

    /// One customer per Idempotency-Key, as Stripe replays a key's first answer.
    async fn customers(State(fake): State<Fake>, headers: HeaderMap) -> Json<Value> {
        let key = headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let mut seen = fake.seen.lock().expect("lock");
        seen.customers.push(key.clone());
        let id = format!(
            "cus_{}",
            key.trim_start_matches("customer-").replace('-', "")
        );
        Json(json!({ "id": id, "object": "customer" }))
    }

    async fn intents(
        State(fake): State<Fake>,
        headers: HeaderMap,
        body: String,
    ) -> (StatusCode, Json<Value>) {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        if header("authorization") != format!("Bearer {KEY}") {
            return (
                StatusCode::UNAUTHORIZED,
                Json(
                    json!({"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}}),
                ),
            );
        }
        assert!(header("content-type").starts_with("application/x-www-form-urlencoded"));
        let key = header("idempotency-key");
        let mut seen = fake.seen.lock().expect("lock");
        seen.intents.push((key.clone(), body.clone()));
        if let Some((status, reply)) = seen.replies.get(&key) {
            return (
                StatusCode::from_u16(*status).expect("status"),
                Json(reply.clone()),
            );
        }
        let f = form(&body);
        let intent = |status: &str, error: Value| {
            json!({
                "id": format!("pi_{}", seen.intents.len()), "object": "payment_intent",
                "amount": f["amount"].parse::<i64>().expect("amount"), "currency": f["currency"],
                "status": status, "metadata": {"parley_payment_id": f["metadata[parley_payment_id]"]},
                "last_payment_error": error,
            })
        };
        let (status, reply, event) = match f["payment_method"].as_str() {
            "pm_card_visa" => {
                let pi = intent("succeeded", Value::Null);
                (200, pi.clone(), ("payment_intent.succeeded", pi))
            }
            "pm_card_chargeDeclined" => {
                let error = json!({"type": "card_error", "code": "card_declined", "decline_code": "generic_decline", "message": "Your card was declined."});
                let pi = intent("requires_payment_method", error.clone());
                let mut body = error;
                body["payment_intent"] = pi.clone();
                (
                    402,
                    json!({"error": body}),
                    ("payment_intent.payment_failed", pi),
                )
            }
            other => {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(
                        json!({"error": {"type": "invalid_request_error", "code": "resource_missing", "message": format!("No such PaymentMethod: '{other}'")}}),
                    ),
                );
            }
        };
        seen.replies.insert(key, (status, reply.clone()));
        let webhook = json!({"id": format!("evt_{}", seen.intents.len()), "object": "event", "type": event.0, "data": {"object": event.1}}).to_string();
        let url = fake.webhook_url.lock().expect("lock").clone();
        tokio::spawn(async move {
            let t = chrono::Utc::now().timestamp();
            let signature = parley_billing::signature::header(WHSEC, t, webhook.as_bytes());
            let _ = reqwest::Client::new()
                .post(url)
                .header("stripe-signature", signature)
                .header("content-type", "application/json")
                .body(webhook)
                .send()
                .await;
        });
        (StatusCode::from_u16(status).expect("status"), Json(reply))
    }

    /// Starts the fake; its base URL, what it saw, and where its webhooks go (set it once known).
    pub async fn start() -> (String, Arc<Mutex<Seen>>, Arc<Mutex<String>>) {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let webhook_url = Arc::new(Mutex::new(String::new()));
        let app = Router::new()
            .route("/v1/customers", post(customers))
            .route("/v1/payment_intents", post(intents))
            .with_state(Fake {
                seen: seen.clone(),
                webhook_url: webhook_url.clone(),
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, seen, webhook_url)
    }

    pub fn form_of(body: &str) -> HashMap<String, String> {
        form(body)
    }
}

#[tokio::test]
async fn the_stripe_adapter_speaks_stripe() {
    let (api, seen, webhook_url) = fake_stripe::start().await;
    let p = Platform::start_opts(Options {
        billing: Some({
            let mut t = toml::Table::new();
            t.insert("provider".into(), "stripe".into());
            t.insert("stripe_api_base".into(), api.clone().into());
            t.insert("stripe_secret_key".into(), fake_stripe::KEY.into());
            t.insert("stripe_webhook_secret".into(), fake_stripe::WHSEC.into());
            t
        }),
        ..Default::default()
    })
    .await;
    *webhook_url.lock().expect("lock") = format!(
        "{}/billing/webhooks/stripe",
        p.graphql_url().trim_end_matches("/graphql")
    );
    let moe = p.register("moe").await;
    let (_, body) = subscribe(&p, &moe, "pro-month", "pm_card_visa", "mo-1").await;
    assert_eq!(body["data"]["subscribe"]["status"], "ACTIVE", "{body}");
    let payments = parley_billing_payments(&p, &moe).await;
    {
        let seen = seen.lock().expect("lock");
        assert_eq!(seen.intents.len(), 1);
        let (key, form) = &seen.intents[0];
        assert_eq!(key, &payments[0], "the payment id is the Idempotency-Key");
        let form = fake_stripe::form_of(form);
        assert_eq!(form["amount"], "1500");
        assert_eq!(form["currency"], "usd");
        assert_eq!(form["confirm"], "true");
        assert_eq!(form["metadata[parley_payment_id]"], payments[0]);
        // The user is a Customer (made under a key of its own) and the card is saved for renewals.
        assert_eq!(seen.customers, [format!("customer-{}", moe.id)]);
        assert_eq!(form["customer"], format!("cus_{}", moe.id.replace('-', "")));
        assert_eq!(form["setup_future_usage"], "off_session");
    }
    // A decline (402) leaves it INCOMPLETE with Stripe's message; an unknown payment method is bad input.
    let ned = p.register("ned").await;
    let (_, body) = subscribe(&p, &ned, "plus-month", "pm_card_chargeDeclined", "ned-1").await;
    assert_eq!(body["data"]["subscribe"]["status"], "INCOMPLETE", "{body}");
    assert_eq!(
        body["data"]["subscribe"]["failureReason"],
        "Your card was declined."
    );
    let (_, body) = subscribe(&p, &ned, "plus-month", "pm_card_unknown", "ned-2").await;
    assert_eq!(codes(&body), ["BAD_USER_INPUT"], "{body}");

    // Stripe's signed webhooks are taken at /billing/webhooks/stripe; the local provider's path is not there.
    let base = p.graphql_url().trim_end_matches("/graphql").to_string();
    let event =
        json!({"id": "evt_direct", "type": "invoice.paid", "data": {"object": {"id": "in_1"}}})
            .to_string();
    let t = chrono::Utc::now().timestamp();
    let http = reqwest::Client::new();
    let send = |path: &str, signature: String| {
        http.post(format!("{base}{path}"))
            .header("stripe-signature", signature)
            .body(event.clone())
            .send()
    };
    let good = parley_billing::signature::header(fake_stripe::WHSEC, t, event.as_bytes());
    assert_eq!(
        send("/billing/webhooks/stripe", good.clone())
            .await
            .expect("post")
            .status(),
        200
    );
    let forged = parley_billing::signature::header("whsec_someone_else", t, event.as_bytes());
    assert_eq!(
        send("/billing/webhooks/stripe", forged)
            .await
            .expect("post")
            .status(),
        400
    );
    assert_eq!(
        send("/billing/webhooks/local", good)
            .await
            .expect("post")
            .status(),
        404
    );
}

#[tokio::test]
async fn admins_edit_plans_and_subscribers_get_the_new_limits_at_once() {
    let p = start(&[]).await;
    let admin = p.register_admin().await;
    let uma = p.register("uma").await;
    let (_, body) = subscribe(&p, &uma, "plus-month", "pm_card_visa", "u-1").await;
    assert_eq!(body["data"]["subscribe"]["status"], "ACTIVE", "{body}");
    let update = "mutation($id: ID!, $i: PlanInput!) { updatePlan(id: $id, input: $i) { id priceCents entitlements { key limit } } }";
    let (_, body) = p
        .gql(
            update,
            json!({ "id": "plus-month", "i": { "priceCents": 1 } }),
            Some(&uma.access),
        )
        .await;
    assert_eq!(codes(&body), ["FORBIDDEN"], "{body}");
    let limits = json!({ "maxUploadMb": 200, "maxGroupMembers": 600, "assistant": true });
    for (id, input) in [
        ("gold", json!({ "priceCents": 1 })),
        ("plus-month", json!({ "priceCents": -1 })),
        ("plus-month", json!({ "name": "" })),
        ("free", json!({ "limits": limits })),
        (
            "plus-month",
            json!({ "limits": { "maxUploadMb": 0, "maxGroupMembers": 600, "assistant": false } }),
        ),
    ] {
        let (_, body) = p
            .gql(update, json!({ "id": id, "i": input }), Some(&admin.access))
            .await;
        assert_eq!(codes(&body), ["BAD_USER_INPUT"], "{id} {input}: {body}");
    }
    let edited = p
        .ok(
            update,
            json!({ "id": "plus-month", "i": { "priceCents": 700, "limits": limits } }),
            Some(&admin.access),
        )
        .await;
    assert_eq!(edited["updatePlan"]["priceCents"], 700);
    assert!(edited["updatePlan"]["entitlements"]
        .as_array()
        .expect("list")
        .contains(&json!({"key": "media.max_upload_mb", "limit": 200})));
    // The subscriber has the new limits now, in billing and in media.
    let now = me(&p, &uma).await;
    assert!(now["entitlements"]
        .as_array()
        .expect("list")
        .contains(&json!({"key": "assistant", "limit": null})));
    let big = json!({ "fileName": "big.bin", "contentType": "image/png", "size": 150 * 1024 * 1024, "purpose": "POST" });
    eventually("media allows 150 MB", || async {
        let (_, body) = p
            .gql(
                "mutation($i: CreateUploadInput!) { createUpload(input: $i) { uploadUrl } }",
                json!({ "i": big }),
                Some(&uma.access),
            )
            .await;
        body.get("errors").is_none().then_some(())
    })
    .await;
    // A retired plan is no longer offered or subscribable.
    p.ok(
        update,
        json!({ "id": "pro-year", "i": { "active": false } }),
        Some(&admin.access),
    )
    .await;
    let offered = p.ok("{ plans { id } }", json!({}), None).await;
    assert!(!offered["plans"]
        .as_array()
        .expect("plans")
        .iter()
        .any(|p| p["id"] == "pro-year"));
    let vic = p.register("vic").await;
    let (_, body) = subscribe(&p, &vic, "pro-year", "pm_card_visa", "v-1").await;
    assert_eq!(codes(&body), ["BAD_USER_INPUT"], "{body}");
}
