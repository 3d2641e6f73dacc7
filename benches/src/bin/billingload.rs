//! Billing figures (issue 21). Three phases, each printing its figures:
//!
//! 1. `subscribe --url …`: through the router of a running `parley up` (local provider): `--users` accounts
//!    each call `subscribe` (PRO monthly, `pm_card_visa`, a key of their own) at `--concurrency`; the call's
//!    latency p50/p99, then the same calls again with the same keys (answered from the idempotency record).
//! 2. `reconcile`: in-process on a fresh store: `--payments` subscriptions whose charge the provider made but
//!    whose answer was lost (a provider wrapper drops every answer), then the reconciliation run until none is
//!    PENDING: the time it took, and an audit (one provider charge and one ledger CHARGE per subscription).
//! 3. `faults`: in-process: `--operations` subscribes and renewals, each cut off at a random point (its task
//!    dropped at an await, as a process killed there: an open transaction rolls back, nothing after it runs),
//!    then the jobs run until nothing is pending, as a restarted billing would; the audit counts double
//!    charges (an invoice paid more than once at the provider and not refunded) and entitlements without
//!    payment (an entitling subscription whose current period has no paid invoice). Both must be 0.
//!
//! `billingload subscribe --url http://127.0.0.1:4000/graphql`; `billingload reconcile`;
//! `billingload faults` (benches/billing.sh runs all three).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use clap::{Parser, Subcommand};
use parley_bench::{gql, register, Samples};
use parley_billing::clock::Clock;
use parley_billing::idempotency::Keys;
use parley_billing::jobs;
use parley_billing::provider::local::LocalProvider;
use parley_billing::provider::{Charge, ChargeRequest, Provider, ProviderError};
use parley_billing::service::Service;
use parley_billing::settings::BillingSettings;
use parley_billing::store::{invoice, ledger, local_charge, payment, subscription};
use parley_billing::Migrator;
use rand::Rng;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;
use uuid::Uuid;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    phase: Phase,
}

#[derive(Subcommand)]
enum Phase {
    Subscribe {
        #[arg(long, default_value = "http://127.0.0.1:4000/graphql")]
        url: String,
        #[arg(long, default_value_t = 1_000)]
        users: usize,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
    Reconcile {
        #[arg(long, default_value_t = 1_000)]
        payments: usize,
        /// A PostgreSQL server (`postgres://user@host:port`) for the store (a fresh database) instead of
        /// SQLite.
        #[arg(long)]
        postgres: Option<String>,
    },
    Faults {
        #[arg(long, default_value_t = 1_000)]
        operations: usize,
        #[arg(long)]
        postgres: Option<String>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Args::parse().phase {
        Phase::Subscribe {
            url,
            users,
            concurrency,
        } => subscribe(&url, users, concurrency).await,
        Phase::Reconcile { payments, postgres } => reconcile(payments, postgres.as_deref()).await,
        Phase::Faults {
            operations,
            postgres,
        } => faults(operations, postgres.as_deref()).await,
    }
}

const SUBSCRIBE: &str = "mutation($k: String!) { subscribe(planId: \"pro-month\", paymentMethodId: \"pm_card_visa\", idempotencyKey: $k) { id status } }";

async fn subscribe(url: &str, users: usize, concurrency: usize) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let run = Uuid::now_v7().simple().to_string();
    let mut tokens = Vec::with_capacity(users);
    for n in 0..users {
        tokens.push(
            register(&http, url, &format!("b{}{n}", &run[20..]))
                .await?
                .0,
        );
    }
    for pass in ["first calls", "same keys again"] {
        let started = Instant::now();
        let samples = Arc::new(std::sync::Mutex::new(Samples::default()));
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let workers = (0..concurrency).map(|_| {
            let (http, url, tokens, samples, next) = (
                http.clone(),
                url.to_string(),
                tokens.clone(),
                samples.clone(),
                next.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(token) = tokens.get(n) else { break };
                    let sent = Instant::now();
                    let data = gql(
                        &http,
                        &url,
                        SUBSCRIBE,
                        json!({ "k": format!("key-{n}") }),
                        Some(token),
                    )
                    .await?;
                    anyhow::ensure!(
                        data["subscribe"]["status"] == "ACTIVE",
                        "not active: {data}"
                    );
                    samples
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(sent.elapsed());
                }
                anyhow::Ok(())
            })
        });
        for worker in futures::future::join_all(workers).await {
            worker??;
        }
        let elapsed = started.elapsed();
        let mut samples = samples.lock().unwrap_or_else(|e| e.into_inner());
        println!(
            "subscribe through the router, {pass} ({users} users, concurrency {concurrency}): {:.0} calls/s; {}",
            users as f64 / elapsed.as_secs_f64(),
            samples.summary()
        );
    }
    Ok(())
}

/// A billing service on a fresh store (SQLite in a temp dir, or a fresh PostgreSQL database) with
/// `provider`, no webhooks, the test clock on, and payments reconciled as soon as they are pending.
async fn service(
    label: &str,
    postgres: Option<&str>,
    provider: impl FnOnce(sea_orm::DatabaseConnection) -> Arc<dyn Provider>,
) -> anyhow::Result<(Service, parley_kit::Runtime)> {
    let dir = std::env::temp_dir().join(format!("parley-billingload-{label}-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&dir)?;
    let mut config = parley_kit::ServiceConfig {
        name: "billing".into(),
        data_dir: dir,
        ..Default::default()
    };
    if let Some(server) = postgres {
        config.database_url =
            Some(parley_bench::fresh_postgres(server, "parley_billingload").await?);
    }
    let runtime = parley_kit::Runtime::start::<Migrator>(config).await?;
    let settings = BillingSettings {
        reconcile_after_secs: 0,
        test_clock: true,
        retry_hours: vec![24, 72],
        ..Default::default()
    };
    let service = Service {
        db: runtime.db.clone(),
        events: runtime.events.clone(),
        provider: provider(runtime.db.clone()),
        clock: Clock::new(runtime.db.clone(), true),
        settings: Arc::new(settings),
        keys: Keys::default(),
    };
    Ok((service, runtime))
}

fn local(db: sea_orm::DatabaseConnection) -> Arc<dyn Provider> {
    Arc::new(LocalProvider::new(db, "whsec_bench".into(), None))
}

/// The local provider whose every charge is made but whose answer is lost on the way back.
struct LostAnswers(LocalProvider);

#[async_trait]
impl Provider for LostAnswers {
    fn name(&self) -> &'static str {
        "local"
    }
    async fn customer(&self, user: Uuid) -> Result<Option<String>, ProviderError> {
        self.0.customer(user).await
    }
    async fn charge(&self, request: &ChargeRequest) -> Result<Charge, ProviderError> {
        self.0.charge(request).await?;
        Err(ProviderError::Unavailable("the answer was lost".into()))
    }
    async fn find(&self, key: Uuid) -> Result<Option<Charge>, ProviderError> {
        self.0.find(key).await
    }
    async fn refund(&self, id: &str, amount: i64, key: &str) -> Result<(), ProviderError> {
        self.0.refund(id, amount, key).await
    }
    fn webhook_secret(&self) -> &str {
        self.0.webhook_secret()
    }
}

async fn reconcile(payments: usize, postgres: Option<&str>) -> anyhow::Result<()> {
    let store = if postgres.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let (lossy, _runtime) = service("reconcile", postgres, |db| {
        Arc::new(LostAnswers(LocalProvider::new(
            db,
            "whsec_bench".into(),
            None,
        )))
    })
    .await?;
    for _ in 0..payments {
        lossy
            .subscribe(Uuid::now_v7(), "pro-month", "pm_card_visa", "k")
            .await?;
    }
    let pending = payment::Entity::find()
        .filter(payment::Column::Status.eq("PENDING"))
        .count(&lossy.db)
        .await?;
    let fixed = Service {
        provider: local(lossy.db.clone()),
        ..lossy
    };
    let started = Instant::now();
    while payment::Entity::find()
        .filter(payment::Column::Status.eq("PENDING"))
        .count(&fixed.db)
        .await?
        > 0
    {
        jobs::reconcile(&fixed).await?;
    }
    let elapsed = started.elapsed();
    let audit = audit(&fixed).await?;
    println!(
        "reconcile ({store}): {pending} payments of unknown outcome resolved in {:.2} s ({:.0}/s); {audit}",
        elapsed.as_secs_f64(),
        pending as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

async fn faults(operations: usize, postgres: Option<&str>) -> anyhow::Result<()> {
    let store = if postgres.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let (service, _runtime) = service("faults", postgres, local).await?;
    let service = Arc::new(service);
    let mut cut = 0;
    let users: Vec<Uuid> = (0..operations / 2).map(|_| Uuid::now_v7()).collect();
    // Half the operations are subscribes (two cards: one whose renewals fail), cut off at random.
    for (n, user) in users.iter().enumerate() {
        let method = if n % 4 == 0 {
            "pm_card_chargeCustomerFail"
        } else {
            "pm_card_visa"
        };
        let deadline = Duration::from_micros(rand::thread_rng().gen_range(0..20_000));
        let key = format!("k{n}");
        let call = service.subscribe(*user, "plus-month", method, &key);
        if tokio::time::timeout(deadline, call).await.is_err() {
            cut += 1;
        }
    }
    // Then the restarted process's jobs settle what was cut off.
    settle(&service).await?;
    // The other half: renewals (and dunning retries) after the period ends, each pass cut off at random.
    let mut renewals = operations - operations / 2;
    for days in [32, 2, 4] {
        service.clock.advance(days * 86_400).await?;
        while renewals > 0 {
            renewals -= 1;
            let deadline = Duration::from_micros(rand::thread_rng().gen_range(0..20_000));
            let pass = async {
                jobs::renew(&service).await?;
                jobs::retry(&service).await
            };
            match tokio::time::timeout(deadline, pass).await {
                Err(_) => cut += 1,
                Ok(result) => {
                    result?;
                    if renewals.is_multiple_of(3) {
                        break;
                    }
                }
            }
        }
        settle(&service).await?;
    }
    let audit = audit(&service).await?;
    println!("faults ({store}): {operations} operations, {cut} cut off mid-way; {audit}");
    Ok(())
}

/// Runs the jobs until no payment is pending (at most 50 passes).
async fn settle(service: &Service) -> anyhow::Result<()> {
    for _ in 0..50 {
        jobs::once(service).await?;
        let pending = payment::Entity::find()
            .filter(payment::Column::Status.is_in(["PENDING", "REFUND_PENDING"]))
            .count(&service.db)
            .await?;
        if pending == 0 {
            return Ok(());
        }
    }
    anyhow::bail!("payments still pending after 50 passes")
}

/// Double charges and entitlements without payment, from the provider's record and billing's store.
async fn audit(service: &Service) -> anyhow::Result<String> {
    let db = &service.db;
    let charges = local_charge::Entity::find().all(db).await?;
    let payments: HashMap<Uuid, payment::Model> = payment::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    // Provider charges kept (succeeded, not refunded) per invoice.
    let mut kept: HashMap<Uuid, usize> = HashMap::new();
    let mut orphans = 0;
    for charge in &charges {
        if charge.status != "succeeded" || charge.refunded_cents >= charge.amount_cents {
            continue;
        }
        match Uuid::parse_str(&charge.key)
            .ok()
            .and_then(|k| payments.get(&k))
        {
            Some(p) => *kept.entry(p.invoice_id).or_default() += 1,
            None => orphans += 1,
        }
    }
    let double = kept.values().filter(|n| **n > 1).count() + orphans;
    let invoices = invoice::Entity::find().all(db).await?;
    let subs = subscription::Entity::find().all(db).await?;
    let mut unpaid_entitled = 0;
    let mut entitled = 0;
    for sub in &subs {
        if !matches!(sub.status.as_str(), "ACTIVE" | "PAST_DUE") {
            continue;
        }
        entitled += 1;
        // The period it is in was paid for (PAST_DUE keeps the last paid period during dunning).
        let paid = invoices.iter().any(|inv| {
            inv.subscription_id == sub.id
                && inv.status == "PAID"
                && inv.period_end == sub.current_period_end
        });
        let charged = ledger::Entity::find()
            .filter(ledger::Column::SubscriptionId.eq(sub.id))
            .filter(ledger::Column::Kind.eq("CHARGE"))
            .count(db)
            .await?
            > 0;
        if !(paid && charged) {
            unpaid_entitled += 1;
        }
    }
    let kept_total: usize = kept.values().sum();
    Ok(format!(
        "{} provider charges ({kept_total} kept), {entitled} entitled subscriptions; double charges: {double}; entitlements without payment: {unpaid_entitled}",
        charges.len()
    ))
}
