//! `kit/asyncapi.yaml`: the broker links as one AsyncAPI 3.0 document. Each route of a
//! broker link that changes state (any method but GET, HEAD, OPTIONS) becomes a channel
//! and a message; its payload is the JSON Schema of the route's request bodies, from the
//! same inferred schema as the .proto; the chosen broker's bindings (NATS, Kafka or
//! RabbitMQ's AMQP) come from the recommendation; the outbox and idempotency keys the
//! plan asks for are message headers.

use serde_json::{json, Map, Value};

use super::names::{pascal, snake};
use super::proto::{self, BodySamples, MIN_SAMPLES};
use super::shape::{self, FieldEvidence, MessageEvidence};
use super::{routes_of, KitInput};
use crate::analysis::recommend::{BrokerKind, Target};
use crate::ingest::serialization::json::Json;
use crate::ingest::serialization::schema::{Schema, Ty};

pub const FILE: &str = "asyncapi.yaml";

/// Binding versions of the AsyncAPI bindings specifications used.
const NATS_BINDING: &str = "0.1.0";
const KAFKA_BINDING: &str = "0.5.0";
const AMQP_BINDING: &str = "0.3.0";

/// The document, or None without a broker link.
pub fn document(input: &KitInput<'_>) -> Option<String> {
    let broker_links: Vec<_> = input
        .links
        .iter()
        .filter(|r| r.assessment.recommendation.target == Target::Broker)
        .collect();
    if broker_links.is_empty() {
        return None;
    }
    let routes = routes_of(input, |r| {
        r.assessment.recommendation.target == Target::Broker
    });
    let kind_of = |server: &str| {
        broker_links
            .iter()
            .find(|r| r.link.server == server)
            .and_then(|r| r.assessment.recommendation.broker.as_ref())
            .map_or(BrokerKind::Nats, |b| b.kind)
    };
    let mut servers = Map::new();
    let mut channels = Map::new();
    let mut operations = Map::new();
    let mut messages = Map::new();
    for (server, rs) in &routes {
        let kind = kind_of(server);
        let (server_key, host, protocol) = match kind {
            BrokerKind::Nats => ("nats", "nats:4222", "nats"),
            BrokerKind::Kafka => ("kafka", "kafka:9092", "kafka"),
            BrokerKind::Rabbitmq => ("rabbitmq", "rabbitmq:5672", "amqp"),
        };
        servers.entry(server_key).or_insert_with(|| {
            json!({
                "host": host,
                "protocol": protocol,
                "description": format!(
                    "The {} broker the plan chose (replace the host with yours).",
                    kind.as_str()
                ),
            })
        });
        let writes: Vec<_> = rs
            .iter()
            .filter(|((m, _), _)| !matches!(m.as_str(), "GET" | "HEAD" | "OPTIONS"))
            .collect();
        for ((method, route), acc) in writes {
            let rn = super::names::route_name(method, route);
            let msg_name = rn.rpc.clone();
            let channel_id = format!("{}{}", snake(server), pascal(&rn.rpc));
            let address = format!("{}.{}", snake(server), snake(&rn.rpc));
            let clients: Vec<&str> = acc.clients.iter().map(String::as_str).collect();
            let mut channel = json!({
                "address": address,
                "title": format!("{method} {route} on {server}"),
                "description": format!(
                    "Replaces `{method} {route}` ({} requests seen, from {}): the caller \
                     publishes, `{server}` consumes.",
                    acc.requests,
                    clients.join(", ")
                ),
                "messages": { msg_name.clone(): { "$ref": format!("#/components/messages/{msg_name}") } },
            });
            match kind {
                BrokerKind::Kafka => {
                    channel["bindings"] = json!({ "kafka": {
                        "topic": address, "bindingVersion": KAFKA_BINDING } });
                }
                BrokerKind::Rabbitmq => {
                    channel["bindings"] = json!({ "amqp": {
                        "is": "routingKey",
                        "exchange": { "name": format!("{}.commands", snake(server)),
                            "type": "topic", "durable": true, "autoDelete": false, "vhost": "/" },
                        "bindingVersion": AMQP_BINDING } });
                }
                BrokerKind::Nats => {}
            }
            channels.insert(channel_id.clone(), channel);
            let chan_ref = json!({ "$ref": format!("#/channels/{channel_id}") });
            let msg_ref =
                json!([{ "$ref": format!("#/channels/{channel_id}/messages/{msg_name}") }]);
            let op_binding = match kind {
                BrokerKind::Nats => json!({ "nats": {
                    "queue": format!("{}-workers", snake(server)), "bindingVersion": NATS_BINDING } }),
                BrokerKind::Kafka => json!({ "kafka": {
                    "groupId": { "type": "string", "enum": [snake(server)] },
                    "bindingVersion": KAFKA_BINDING } }),
                BrokerKind::Rabbitmq => json!({ "amqp": {
                    "deliveryMode": 2, "ack": true, "bindingVersion": AMQP_BINDING } }),
            };
            operations.insert(
                format!("publish{}", pascal(&rn.rpc)),
                json!({
                    "action": "send",
                    "channel": chan_ref,
                    "messages": msg_ref,
                    "summary": format!(
                        "Published by {} through its transactional outbox (the row commits \
                         with the caller's own write; a relay publishes it).",
                        clients.join(", ")
                    ),
                }),
            );
            operations.insert(
                format!("consume{}", pascal(&rn.rpc)),
                json!({
                    "action": "receive",
                    "channel": chan_ref,
                    "messages": msg_ref,
                    "summary": format!(
                        "Consumed by {server}, which drops a message whose idempotency key \
                         it has already processed."
                    ),
                    "bindings": op_binding,
                }),
            );
            let mut message = json!({
                "name": msg_name,
                "title": format!("{method} {route}"),
                "contentType": "application/json",
                "headers": headers(),
                "payload": payload(&acc.request, input.infer_enums),
            });
            if kind == BrokerKind::Kafka {
                message["bindings"] = json!({ "kafka": {
                    "key": { "type": "string",
                        "description": "The idempotency key: one partition per key keeps a retried message behind its first copy." },
                    "bindingVersion": KAFKA_BINDING } });
            }
            messages.insert(msg_name, message);
        }
    }
    let doc = json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "Broker links of the rollout plan",
            "version": "1.0.0",
            "description": format!(
                "Generated by linkrank from {}: the routes the plan moves to a broker, their \
                 payloads from the sampled JSON bodies (names and types only, no value).",
                input.source
            ),
        },
        "servers": servers,
        "channels": channels,
        "operations": operations,
        "components": { "messages": messages },
    });
    let yaml = serde_norway::to_string(&doc).ok()?;
    Some(format!(
        "# AsyncAPI 3.0 document of the broker links (linkrank migration kit).\n{yaml}"
    ))
}

/// The outbox and idempotency headers every message carries.
fn headers() -> Value {
    json!({
        "type": "object",
        "required": ["idempotency-key", "outbox-id"],
        "properties": {
            "idempotency-key": {
                "type": "string",
                "description": "Set by the producer per business operation (the same on a retried publish); the consumer records the keys it processed and drops repeats."
            },
            "outbox-id": {
                "type": "string",
                "description": "The id of the transactional-outbox row this message was relayed from: the relay may publish a row twice after a crash, and the pair (outbox-id, idempotency-key) lets the consumer tell a relay duplicate from a new operation."
            }
        }
    })
}

/// The JSON Schema of a route's request bodies, or an open schema saying why there is
/// none (no invented schema).
pub fn payload(body: &BodySamples<'_>, infer_enums: bool) -> Value {
    if body.docs.len() < MIN_SAMPLES {
        return json!({
            "description": format!(
                "No schema inferred: {} JSON sample(s) kept (at least {MIN_SAMPLES} needed), \
                 {} other or unparsable bodies.",
                body.docs.len(),
                body.other_bodies + body.not_json
            )
        });
    }
    let owned: Vec<Json> = body.docs.iter().map(|d| (*d).clone()).collect();
    // An `enum` list only from a sample of every body (see `BodySamples::is_complete`).
    let schema = Schema::infer_with(&owned, infer_enums && body.is_complete());
    let ev = shape::evidence(&schema, &body.docs);
    let mut v = if schema.wrapped {
        let f = schema.messages.first().and_then(|m| m.fields.first());
        match (f, ev.first()) {
            (Some(f), Some(e)) => {
                let fe = e.fields.get(&f.key).cloned().unwrap_or_default();
                field_schema(&schema, &ev, &f.ty, f.repeated, &f.key, &fe)
            }
            _ => json!({}),
        }
    } else {
        object_schema(&schema, &ev, 0)
    };
    v["description"] = json!(format!(
        "Inferred from {} sampled JSON bodies (of {} seen).",
        body.docs.len(),
        body.json_bodies
    ));
    v
}

fn object_schema(schema: &Schema, ev: &[MessageEvidence], i: usize) -> Value {
    let (Some(m), Some(e)) = (schema.messages.get(i), ev.get(i)) else {
        return json!({ "type": "object" });
    };
    let mut props = Map::new();
    let mut required = Vec::new();
    for f in &m.fields {
        let fe = e.fields.get(&f.key).cloned().unwrap_or_default();
        let mut s = field_schema(schema, ev, &f.ty, f.repeated, &f.key, &fe);
        if fe.nulls > 0 {
            s = json!({ "oneOf": [s, { "type": "null" }] });
        }
        if fe.present + fe.nulls >= e.objects && e.objects > 0 {
            required.push(f.key.clone());
        }
        props.insert(f.key.clone(), s);
    }
    for (k, _) in &e.untyped {
        props.insert(
            k.clone(),
            json!({ "description": "only null or [] in the samples: type unknown" }),
        );
    }
    let mut o = json!({ "type": "object", "properties": props });
    if !required.is_empty() {
        o["required"] = json!(required);
    }
    o
}

fn field_schema(
    schema: &Schema,
    ev: &[MessageEvidence],
    ty: &Ty,
    repeated: bool,
    key: &str,
    fe: &FieldEvidence,
) -> Value {
    let one = match ty {
        Ty::Int64 | Ty::Sint64 => json!({
            "type": "integer",
            "format": if fe.beyond_32 { "int64" } else { "int32" },
        }),
        Ty::Double => json!({ "type": "number" }),
        Ty::Bool => json!({ "type": "boolean" }),
        Ty::String => json!({ "type": "string" }),
        Ty::JsonText => {
            let kinds: Vec<String> = fe.kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
            json!({ "description": format!("the samples conflict ({}): any JSON value", kinds.join(", ")) })
        }
        Ty::Enum(e) => {
            let symbols: Vec<&String> = schema
                .enums
                .get(*e)
                .map_or(Vec::new(), |v| v.iter().collect());
            match proto::enum_refusal(key, fe, &symbols) {
                None => json!({ "type": "string", "enum": symbols }),
                Some(why) => {
                    json!({ "type": "string", "description": format!("enum-like, symbols not written: {why}") })
                }
            }
        }
        Ty::Message(j) => object_schema(schema, ev, *j),
        Ty::Map(inner) => {
            let v = match inner.as_ref() {
                Ty::Message(j) => object_schema(schema, ev, *j),
                t => field_schema(schema, ev, t, false, key, &FieldEvidence::default()),
            };
            json!({ "type": "object", "additionalProperties": v })
        }
    };
    if repeated && !matches!(ty, Ty::Map(_)) {
        json!({ "type": "array", "items": one })
    } else {
        one
    }
}
