//! Codec calibration: how much faster generated code is than the generic paths linkrank
//! times the samples with.
//!
//! linkrank cannot compile code for a schema it infers at run time, so it times JSON
//! parsing with `serde_json::Value` and protobuf decoding with prost-reflect's
//! `DynamicMessage`. Services use generated code on both sides (serde derive, prost
//! generated structs), and the generic paths are not equally slower: a dynamic protobuf
//! decode allocates a map entry and a `Value` per field, which costs it far more, relative
//! to generated code, than `serde_json::Value` costs JSON. Timed as they are, every link's
//! CPU saving came out negative.
//!
//! So once per run, on one fixed schema (an order with line items, address and totals,
//! the shape of typical service payloads), both paths of both codecs are timed on the same
//! documents, and each timed sample is scaled by its codec's ratio:
//! `generated / generic`. The ratios are measured on this machine in this run, so they
//! move with its CPU and the crates' versions. Documented in docs/cost-model.md §3.

use std::hint::black_box;
use std::time::{Duration, Instant};

use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FieldDescriptorProto, FileDescriptorProto};
use serde::Deserialize;

/// Generated / generic time of each codec on the calibration schema.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CodecRatios {
    /// serde derive / `serde_json::Value`, parsing JSON.
    pub json_typed_over_value: f64,
    /// prost generated / prost-reflect `DynamicMessage`, decoding protobuf.
    pub protobuf_generated_over_dynamic: f64,
}

// The calibration schema, as serde would derive it for a service.
#[derive(Deserialize)]
#[allow(dead_code)] // read by serde only: the fields are what is parsed
struct OrderJson {
    id: u64,
    uuid: String,
    customer_id: u64,
    status: String,
    currency: String,
    items: Vec<ItemJson>,
    totals: TotalsJson,
    shipping_address: AddressJson,
    payment_id: String,
    created_at: String,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct ItemJson {
    line: u32,
    sku: String,
    name: String,
    qty: u32,
    unit_price_cents: u64,
    seller_id: u64,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct TotalsJson {
    subtotal_cents: u64,
    shipping_cents: u64,
    tax_cents: u64,
    total_cents: u64,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct AddressJson {
    street: String,
    city: String,
    postcode: String,
    country: String,
}

// The same schema as prost generates it (`#[derive(Message)]` is what prost-build emits).
#[derive(Clone, PartialEq, Message)]
struct Order {
    #[prost(uint64, tag = "1")]
    id: u64,
    #[prost(string, tag = "2")]
    uuid: String,
    #[prost(uint64, tag = "3")]
    customer_id: u64,
    #[prost(string, tag = "4")]
    status: String,
    #[prost(string, tag = "5")]
    currency: String,
    #[prost(message, repeated, tag = "6")]
    items: Vec<Item>,
    #[prost(message, optional, tag = "7")]
    totals: Option<Totals>,
    #[prost(message, optional, tag = "8")]
    shipping_address: Option<Address>,
    #[prost(string, tag = "9")]
    payment_id: String,
    #[prost(string, tag = "10")]
    created_at: String,
}

#[derive(Clone, PartialEq, Message)]
struct Item {
    #[prost(uint32, tag = "1")]
    line: u32,
    #[prost(string, tag = "2")]
    sku: String,
    #[prost(string, tag = "3")]
    name: String,
    #[prost(uint32, tag = "4")]
    qty: u32,
    #[prost(uint64, tag = "5")]
    unit_price_cents: u64,
    #[prost(uint64, tag = "6")]
    seller_id: u64,
}

#[derive(Clone, PartialEq, Message)]
struct Totals {
    #[prost(uint64, tag = "1")]
    subtotal_cents: u64,
    #[prost(uint64, tag = "2")]
    shipping_cents: u64,
    #[prost(uint64, tag = "3")]
    tax_cents: u64,
    #[prost(uint64, tag = "4")]
    total_cents: u64,
}

#[derive(Clone, PartialEq, Message)]
struct Address {
    #[prost(string, tag = "1")]
    street: String,
    #[prost(string, tag = "2")]
    city: String,
    #[prost(string, tag = "3")]
    postcode: String,
    #[prost(string, tag = "4")]
    country: String,
}

/// The descriptor of `Order` for prost-reflect, field for field the structs above.
fn order_descriptor() -> Option<MessageDescriptor> {
    let field = |name: &str, number: i32, ty: Type, type_name: Option<&str>, repeated: bool| {
        FieldDescriptorProto {
            name: Some(name.into()),
            number: Some(number),
            label: Some(if repeated {
                Label::Repeated
            } else {
                Label::Optional
            } as i32),
            r#type: Some(ty as i32),
            type_name: type_name.map(Into::into),
            json_name: Some(name.into()),
            ..Default::default()
        }
    };
    let message = |name: &str, fields: Vec<FieldDescriptorProto>| DescriptorProto {
        name: Some(name.into()),
        field: fields,
        ..Default::default()
    };
    let s = |n: &str, i| field(n, i, Type::String, None, false);
    let u64f = |n: &str, i| field(n, i, Type::Uint64, None, false);
    let u32f = |n: &str, i| field(n, i, Type::Uint32, None, false);
    let file = FileDescriptorProto {
        name: Some("calibration.proto".into()),
        package: Some("calibration".into()),
        syntax: Some("proto3".into()),
        message_type: vec![
            message(
                "Order",
                vec![
                    u64f("id", 1),
                    s("uuid", 2),
                    u64f("customer_id", 3),
                    s("status", 4),
                    s("currency", 5),
                    field("items", 6, Type::Message, Some(".calibration.Item"), true),
                    field(
                        "totals",
                        7,
                        Type::Message,
                        Some(".calibration.Totals"),
                        false,
                    ),
                    field(
                        "shipping_address",
                        8,
                        Type::Message,
                        Some(".calibration.Address"),
                        false,
                    ),
                    s("payment_id", 9),
                    s("created_at", 10),
                ],
            ),
            message(
                "Item",
                vec![
                    u32f("line", 1),
                    s("sku", 2),
                    s("name", 3),
                    u32f("qty", 4),
                    u64f("unit_price_cents", 5),
                    u64f("seller_id", 6),
                ],
            ),
            message(
                "Totals",
                vec![
                    u64f("subtotal_cents", 1),
                    u64f("shipping_cents", 2),
                    u64f("tax_cents", 3),
                    u64f("total_cents", 4),
                ],
            ),
            message(
                "Address",
                vec![
                    s("street", 1),
                    s("city", 2),
                    s("postcode", 3),
                    s("country", 4),
                ],
            ),
        ],
        ..Default::default()
    };
    let pool = DescriptorPool::from_file_descriptor_set(prost_types::FileDescriptorSet {
        file: vec![file],
    })
    .ok()?;
    pool.get_message_by_name("calibration.Order")
}

/// `n` orders of 1 to 8 items, fixed by their index (no randomness: same documents every
/// run), as JSON and as protobuf.
fn documents(n: u64) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    const NAMES: [&str; 4] = [
        "Espresso beans 1kg",
        "Pour-over kettle",
        "Burr grinder",
        "Paper filters x100",
    ];
    const CITIES: [&str; 3] = ["Berlin", "Lyon", "Porto"];
    let mut json = Vec::new();
    let mut pb = Vec::new();
    for i in 0..n {
        let items: Vec<Item> = (0..1 + i % 8)
            .map(|k| Item {
                line: k as u32 + 1,
                sku: format!("SKU-{}", 10_000 + (i * 7 + k) % 4000),
                name: NAMES[((i + k) % 4) as usize].into(),
                qty: 1 + ((i + k) % 4) as u32,
                unit_price_cents: 499 + (i * 131 + k * 17) % 12_000,
                seller_id: 100 + (i + k) % 80,
            })
            .collect();
        let subtotal: u64 = items
            .iter()
            .map(|x| u64::from(x.qty) * x.unit_price_cents)
            .sum();
        let order = Order {
            id: 100_000 + i,
            uuid: format!(
                "{:08x}-1c3e-4a5b-9d7f-{:012x}",
                i * 2_654_435_761,
                i * 40_503
            ),
            customer_id: 1000 + i % 1000,
            status: ["paid", "packed", "shipped"][(i % 3) as usize].into(),
            currency: "EUR".into(),
            items,
            totals: Some(Totals {
                subtotal_cents: subtotal,
                shipping_cents: if subtotal < 5000 { 495 } else { 0 },
                tax_cents: subtotal * 19 / 119,
                total_cents: subtotal + if subtotal < 5000 { 495 } else { 0 },
            }),
            shipping_address: Some(Address {
                street: format!("{} Example Street", 1 + i % 200),
                city: CITIES[(i % 3) as usize].into(),
                postcode: format!("{:05}", 10_000 + i % 80_000),
                country: ["DE", "FR", "PT"][(i % 3) as usize].into(),
            }),
            payment_id: format!("pay_{:016x}", i * 0x9E37_79B9),
            created_at: format!("2024-05-{:02}T{:02}:{:02}:00Z", 1 + i % 28, i % 24, i % 60),
        };
        json.push(to_json(&order).into_bytes());
        pb.push(order.encode_to_vec());
    }
    (json, pb)
}

/// The order as a service writes it (field names as in the schema).
fn to_json(o: &Order) -> String {
    let items: Vec<serde_json::Value> = o
        .items
        .iter()
        .map(|x| {
            serde_json::json!({"line": x.line, "sku": x.sku, "name": x.name, "qty": x.qty,
                "unit_price_cents": x.unit_price_cents, "seller_id": x.seller_id})
        })
        .collect();
    let t = o.totals.clone().unwrap_or_default();
    let a = o.shipping_address.clone().unwrap_or_default();
    serde_json::json!({
        "id": o.id, "uuid": o.uuid, "customer_id": o.customer_id, "status": o.status,
        "currency": o.currency, "items": items,
        "totals": {"subtotal_cents": t.subtotal_cents, "shipping_cents": t.shipping_cents,
                   "tax_cents": t.tax_cents, "total_cents": t.total_cents},
        "shipping_address": {"street": a.street, "city": a.city, "postcode": a.postcode,
                             "country": a.country},
        "payment_id": o.payment_id, "created_at": o.created_at,
    })
    .to_string()
}

/// Time of `f` over every buffer, repeated `rounds` times.
fn time(bufs: &[Vec<u8>], rounds: u32, f: impl Fn(&[u8])) -> Duration {
    let start = Instant::now();
    for _ in 0..rounds {
        for b in bufs {
            f(b);
        }
    }
    start.elapsed()
}

/// The ratios, measured once per process (`measure`).
pub fn ratios() -> Option<CodecRatios> {
    static RATIOS: std::sync::OnceLock<Option<CodecRatios>> = std::sync::OnceLock::new();
    *RATIOS.get_or_init(measure)
}

/// Times both paths of both codecs on the calibration documents, alternating them so that
/// a slow moment of the machine weighs on both; each ratio is the median of the rounds.
/// About 20 ms. `None` if a path fails on the documents (it cannot).
pub fn measure() -> Option<CodecRatios> {
    let desc = order_descriptor()?;
    let (json, pb) = documents(64);
    // Every path reads every document correctly, or the ratios would compare nothing.
    for (j, p) in json.iter().zip(&pb) {
        serde_json::from_slice::<OrderJson>(j).ok()?;
        serde_json::from_slice::<serde_json::Value>(j).ok()?;
        Order::decode(p.as_slice()).ok()?;
        DynamicMessage::decode(desc.clone(), p.as_slice()).ok()?;
    }
    let mut json_ratio = Vec::new();
    let mut pb_ratio = Vec::new();
    for _ in 0..7 {
        let typed = time(&json, 3, |b| {
            black_box(serde_json::from_slice::<OrderJson>(b).is_ok());
        });
        let value = time(&json, 3, |b| {
            black_box(serde_json::from_slice::<serde_json::Value>(b).is_ok());
        });
        let generated = time(&pb, 3, |b| {
            black_box(Order::decode(b).is_ok());
        });
        let dynamic = time(&pb, 3, |b| {
            black_box(DynamicMessage::decode(desc.clone(), b).is_ok());
        });
        json_ratio.push(typed.as_secs_f64() / value.as_secs_f64().max(1e-9));
        pb_ratio.push(generated.as_secs_f64() / dynamic.as_secs_f64().max(1e-9));
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Some(CodecRatios {
        json_typed_over_value: median(json_ratio).clamp(0.01, 1.0),
        protobuf_generated_over_dynamic: median(pb_ratio).clamp(0.01, 1.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The calibration documents read the same through generated and dynamic code, and
    /// the ratios come out as positive, finite figures. (Which path is faster is measured
    /// in release builds; a debug build compiles the generated code unoptimised.)
    #[test]
    fn generated_code_is_faster_and_reads_the_same_documents() {
        let desc = order_descriptor().unwrap();
        let (json, pb) = documents(8);
        for (j, p) in json.iter().zip(&pb) {
            let typed: OrderJson = serde_json::from_slice(j).unwrap();
            let generated = Order::decode(p.as_slice()).unwrap();
            assert_eq!(typed.items.len(), generated.items.len());
            let dynamic = DynamicMessage::decode(desc.clone(), p.as_slice()).unwrap();
            // The dynamic message re-encodes to the same bytes: one schema, two codecs.
            assert_eq!(&dynamic.encode_to_vec(), p);
        }
        let r = measure().unwrap();
        for x in [r.protobuf_generated_over_dynamic, r.json_typed_over_value] {
            assert!(x.is_finite() && x > 0.0 && x <= 1.0, "{r:?}");
        }
    }
}
