//! A subgraph's internal endpoints answer only the platform's own processes: `GET /events` (every published
//! event: chat texts, blocks) needs the router key the subgraphs share, whoever else can reach the port.

use parley_harness as support;

use support::Platform;

#[tokio::test]
async fn the_event_log_needs_the_router_key() {
    let p = Platform::start().await;
    p.register("alice").await; // something in users' log
    let http = reqwest::Client::new();
    for subgraph in &p.subgraphs {
        let url = format!("{}/events?after=0", subgraph.url);
        let anonymous = http.get(&url).send().await.expect("subgraph");
        assert_eq!(anonymous.status(), 403, "{} without a key", subgraph.name);
        let wrong = http
            .get(&url)
            .header("x-parley-router-key", "not-the-key")
            .send()
            .await
            .expect("subgraph");
        assert_eq!(wrong.status(), 403, "{} with a wrong key", subgraph.name);
        let keyed = http
            .get(&url)
            .header("x-parley-router-key", &p.router_key)
            .send()
            .await
            .expect("subgraph");
        assert_eq!(keyed.status(), 200, "{} with the key", subgraph.name);
    }
}
