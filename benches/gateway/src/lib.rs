//! parley-gateway-bench: the gateway benchmark, in the shape of the public federation gateways benchmark.
//!
//! - This library: four small federated subgraphs over fixed in-memory data — `accounts` (users),
//!   `products` (`topProducts`), `inventory` (stock and shipping of a product), `reviews` (reviews with their
//!   author and product, and the reviews of users and products) — served by [`serve`].
//! - `bin/bare-router.rs`: the Hive Router engine with no Parley plugin (same crate version as Parley's router).
//! - `bin/gatewaybench.rs`: starts the subgraphs, both routers, and runs the load; prints the comparison.
//! - `supergraph.graphql`: the four composed (`gatewaybench --compose` rewrites it).

use async_graphql::{
    ComplexObject, EmptyMutation, EmptySubscription, Object, Schema, SimpleObject, ID,
};
use axum::routing::get;
use tokio::net::TcpListener;

pub const SUBGRAPHS: [&str; 4] = ["accounts", "inventory", "products", "reviews"];

const USERS: usize = 5;
const PRODUCTS: usize = 10;
const REVIEWS: usize = 20;

// --- accounts --------------------------------------------------------------------------------------------

#[derive(SimpleObject, Clone)]
struct User {
    id: ID,
    name: String,
    username: String,
    birthday: i32,
}

fn user(i: usize) -> User {
    User {
        id: ID(i.to_string()),
        name: format!("User {i}"),
        username: format!("user{i}"),
        birthday: 1_000 + i as i32,
    }
}

fn user_by_id(id: &ID) -> Option<User> {
    id.parse::<usize>()
        .ok()
        .filter(|i| (1..=USERS).contains(i))
        .map(user)
}

struct AccountsQuery;

#[Object(name = "Query")]
impl AccountsQuery {
    async fn me(&self) -> User {
        user(1)
    }

    async fn users(&self) -> Vec<User> {
        (1..=USERS).map(user).collect()
    }

    async fn user(&self, id: ID) -> Option<User> {
        user_by_id(&id)
    }

    #[graphql(entity)]
    async fn find_user_by_id(&self, id: ID) -> Option<User> {
        user_by_id(&id)
    }
}

// --- products --------------------------------------------------------------------------------------------

#[derive(SimpleObject, Clone)]
#[graphql(name = "Product")]
struct CatalogProduct {
    upc: String,
    name: String,
    price: i32,
    weight: i32,
}

fn product_index(upc: &str) -> Option<usize> {
    upc.strip_prefix('p')
        .and_then(|n| n.parse().ok())
        .filter(|i| (1..=PRODUCTS).contains(i))
}

fn catalog_product(i: usize) -> CatalogProduct {
    CatalogProduct {
        upc: format!("p{i}"),
        name: format!("Product {i}"),
        price: 100 * i as i32,
        weight: 10 * i as i32,
    }
}

struct ProductsQuery;

#[Object(name = "Query")]
impl ProductsQuery {
    async fn top_products(&self, #[graphql(default = 5)] first: i32) -> Vec<CatalogProduct> {
        (1..=PRODUCTS)
            .take(first.clamp(0, PRODUCTS as i32) as usize)
            .map(catalog_product)
            .collect()
    }

    #[graphql(entity)]
    async fn find_product_by_upc(&self, upc: String) -> Option<CatalogProduct> {
        product_index(&upc).map(catalog_product)
    }
}

// --- inventory -------------------------------------------------------------------------------------------

#[derive(SimpleObject)]
#[graphql(name = "Product")]
struct StockedProduct {
    upc: String,
    in_stock: bool,
    shipping_estimate: i32,
}

struct InventoryQuery;

#[Object(name = "Query")]
impl InventoryQuery {
    #[graphql(entity)]
    async fn find_product_by_upc(&self, upc: String) -> Option<StockedProduct> {
        product_index(&upc).map(|i| StockedProduct {
            upc,
            in_stock: i % 3 != 0,
            shipping_estimate: 5 * i as i32,
        })
    }
}

// --- reviews ---------------------------------------------------------------------------------------------

#[derive(SimpleObject, Clone)]
#[graphql(name = "User")]
#[graphql(complex)]
struct ReviewedUser {
    id: ID,
}

#[derive(SimpleObject, Clone)]
#[graphql(name = "Product")]
#[graphql(complex)]
struct ReviewedProduct {
    upc: String,
}

#[derive(SimpleObject, Clone)]
struct Review {
    id: ID,
    body: String,
    author: ReviewedUser,
    product: ReviewedProduct,
}

fn review(j: usize) -> Review {
    Review {
        id: ID(format!("r{j}")),
        body: format!("Review {j}: solid, would buy again."),
        author: ReviewedUser {
            id: ID(((j % USERS) + 1).to_string()),
        },
        product: ReviewedProduct {
            upc: format!("p{}", (j % PRODUCTS) + 1),
        },
    }
}

#[ComplexObject]
impl ReviewedUser {
    async fn reviews(&self) -> Vec<Review> {
        (1..=REVIEWS)
            .map(review)
            .filter(|r| r.author.id == self.id)
            .collect()
    }
}

#[ComplexObject]
impl ReviewedProduct {
    async fn reviews(&self) -> Vec<Review> {
        (1..=REVIEWS)
            .map(review)
            .filter(|r| r.product.upc == self.upc)
            .collect()
    }
}

struct ReviewsQuery;

#[Object(name = "Query")]
impl ReviewsQuery {
    #[graphql(entity)]
    async fn find_user_by_id(&self, id: ID) -> ReviewedUser {
        ReviewedUser { id }
    }

    #[graphql(entity)]
    async fn find_product_by_upc(&self, upc: String) -> ReviewedProduct {
        ReviewedProduct { upc }
    }
}

// --- serving ---------------------------------------------------------------------------------------------

fn router<Q: async_graphql::ObjectType + 'static>(query: Q) -> (axum::Router, String) {
    let schema = Schema::build(query, EmptyMutation, EmptySubscription)
        .enable_federation()
        .finish();
    let sdl = schema.sdl_with_options(async_graphql::SDLExportOptions::new().federation());
    let app = axum::Router::new()
        .route_service("/graphql", async_graphql_axum::GraphQL::new(schema))
        .route("/health", get(|| async { "ok" }));
    (app, sdl)
}

/// The app and federation SDL of subgraph `name`.
pub fn subgraph(name: &str) -> Option<(axum::Router, String)> {
    Some(match name {
        "accounts" => router(AccountsQuery),
        "inventory" => router(InventoryQuery),
        "products" => router(ProductsQuery),
        "reviews" => router(ReviewsQuery),
        _ => return None,
    })
}

/// Serves subgraph `name` on `listener` until the task is dropped.
pub async fn serve(name: &str, listener: TcpListener) -> anyhow::Result<()> {
    let (app, _) = subgraph(name).ok_or_else(|| anyhow::anyhow!("unknown subgraph {name}"))?;
    axum::serve(listener, app).await?;
    Ok(())
}

/// The benchmark's operation: one document crossing all four subgraphs several levels deep.
pub const QUERY: &str = r"query Gateway {
  users {
    id username name
    reviews {
      id body
      product {
        upc name price weight inStock shippingEstimate
        reviews { id body author { id username name reviews { id body product { upc name inStock } } } }
      }
    }
  }
  topProducts(first: 5) {
    upc name price weight inStock shippingEstimate
    reviews { id body author { id username name reviews { id body product { upc name } } } }
  }
}";

/// Whether a response to [`QUERY`] has the expected shape.
pub fn expected_shape(body: &serde_json::Value) -> bool {
    let data = &body["data"];
    body.get("errors").is_none()
        && data["users"].as_array().is_some_and(|u| u.len() == USERS)
        && data["topProducts"].as_array().is_some_and(|p| p.len() == 5)
        && data["users"][0]["reviews"][0]["product"]["reviews"][0]["author"]["reviews"][0]
            ["product"]["inStock"]
            .is_boolean()
        && data["topProducts"][0]["reviews"][0]["author"]["username"].is_string()
}
