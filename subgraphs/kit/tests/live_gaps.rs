//! A live subscriber that falls behind its topic learns that it skipped events (`Delivery::Gap`), so a stream
//! that depends on every event (a member's removal ends their chat stream) can re-read the store instead of
//! carrying on as if nothing happened; `keyed` still just skips.

use std::time::Duration;

use futures::StreamExt;
use parley_kit::events::{EventBus, InProcessBus};
use parley_kit::live::{Delivery, Live};
use parley_kit::testing::{envelope, Tick};

#[tokio::test]
async fn a_subscriber_that_falls_behind_is_told() {
    let bus = InProcessBus::new();
    let live = Live::new(bus.clone(), "test");
    let mut slow = Box::pin(live.keyed_or_gap("a"));
    // More than a topic holds, while the subscriber reads nothing.
    for n in 0..400 {
        bus.publish(&envelope(n, "a", Tick { n }))
            .await
            .expect("publish");
        if n % 50 == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let first = tokio::time::timeout(Duration::from_secs(5), slow.next())
        .await
        .expect("an item")
        .expect("open");
    assert!(matches!(first, Delivery::Gap), "{first:?}");
    // Then the events it still holds follow.
    let next = tokio::time::timeout(Duration::from_secs(5), slow.next())
        .await
        .expect("an item")
        .expect("open");
    assert!(matches!(next, Delivery::Event(_)), "{next:?}");
}
