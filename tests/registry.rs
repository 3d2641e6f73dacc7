//! The registry against the event contracts: every subgraph is subscribed to exactly the events its handler
//! applies, from producers that are registered, and names and ports are its own.

use std::collections::{BTreeSet, HashSet};

use chrono::Utc;
use parley::subgraphs::{self, ALL};
use parley_kit::events::contracts;
use parley_kit::events::EventEnvelope;
use uuid::Uuid;

fn envelope(kind: &contracts::EventKind) -> EventEnvelope {
    EventEnvelope {
        position: 1,
        id: Uuid::now_v7(),
        source: kind.source.into(),
        kind: kind.name.into(),
        aggregate_id: Uuid::now_v7().to_string(),
        occurred_at: Utc::now(),
        payload: contracts::sample(kind.name).expect("every kind has a sample"),
    }
}

/// Feeds every kind of event there is to every subgraph's handler: it takes exactly the kinds the registry
/// subscribes it to (and decodes each of them), and nothing else.
#[test]
fn each_handler_takes_exactly_what_the_registry_subscribes_it_to() {
    for subgraph in ALL {
        let subscribed: HashSet<_> = subgraph.consumes().iter().collect();
        for kind in contracts::ALL {
            let takes = subgraph.takes(&envelope(kind)).unwrap_or_else(|e| {
                panic!("{}: {} does not decode: {e}", subgraph.name(), kind.name)
            });
            assert_eq!(
                takes,
                subscribed.contains(kind),
                "{} {} {} but is {}subscribed to it",
                subgraph.name(),
                if takes { "handles" } else { "ignores" },
                kind.name,
                if subscribed.contains(kind) {
                    ""
                } else {
                    "not "
                },
            );
        }
    }
}

#[test]
fn every_consumed_kind_comes_from_a_registered_producer() {
    let names: BTreeSet<_> = subgraphs::names().into_iter().collect();
    for subgraph in ALL {
        let producers: BTreeSet<_> = subgraph.consumes().iter().map(|k| k.source).collect();
        assert_eq!(
            subgraph.sources().into_iter().collect::<BTreeSet<_>>(),
            producers,
            "{}: its event sources are the producers of what it consumes",
            subgraph.name()
        );
        for source in producers {
            assert!(
                names.contains(source),
                "{} consumes from unregistered {source}",
                subgraph.name()
            );
            assert_ne!(
                source,
                subgraph.name(),
                "{} consumes its own events",
                subgraph.name()
            );
        }
    }
    for kind in contracts::ALL {
        assert!(
            names.contains(kind.source),
            "{} comes from unregistered {}",
            kind.name,
            kind.source
        );
    }
}

#[test]
fn names_and_ports_are_unique() {
    let names: HashSet<_> = ALL.iter().map(|s| s.name()).collect();
    let ports: HashSet<_> = ALL.iter().map(|s| s.port()).collect();
    assert_eq!(names.len(), ALL.len(), "two subgraphs share a name");
    assert_eq!(ports.len(), ALL.len(), "two subgraphs share a port");
    assert!(subgraphs::find("nope").is_err());
}
