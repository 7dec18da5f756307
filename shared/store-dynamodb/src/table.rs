//! Creating the table from `infra/dynamodb-table.json`, the one definition that the
//! CloudFormation template and the tests share, so they cannot drift apart.

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use serde::Deserialize;

/// `AWS::DynamoDB::Table` Properties (without `TableName`).
pub const TABLE_DEFINITION: &str = include_str!("../../../infra/dynamodb-table.json");

/// The GSI that serves compartment and type listings.
pub const GSI1: &str = "gsi1";

/// Why a table could not be created.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("infra/dynamodb-table.json is not a valid table definition: {0}")]
    Definition(String),
    #[error("CreateTable {table} failed: {message}")]
    Create { table: String, message: String },
    #[error("table {table} did not become ACTIVE: {message}")]
    NotActive { table: String, message: String },
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TableProperties {
    billing_mode: String,
    attribute_definitions: Vec<AttributeDef>,
    key_schema: Vec<KeyDef>,
    #[serde(default)]
    global_secondary_indexes: Vec<IndexDef>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AttributeDef {
    attribute_name: String,
    attribute_type: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyDef {
    attribute_name: String,
    key_type: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct IndexDef {
    index_name: String,
    key_schema: Vec<KeyDef>,
    projection: ProjectionDef,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ProjectionDef {
    projection_type: String,
    #[serde(default)]
    non_key_attributes: Vec<String>,
}

/// Creates `table_name` as `infra/dynamodb-table.json` defines it and waits until it is
/// ACTIVE. A table that already exists is left as it is (so local runs can call this
/// at start-up).
pub async fn create_table(client: &Client, table_name: &str) -> Result<(), TableError> {
    let properties: TableProperties = serde_json::from_str(TABLE_DEFINITION)
        .map_err(|e| TableError::Definition(e.to_string()))?;
    let request = client
        .create_table()
        .table_name(table_name)
        .billing_mode(parse_enum::<BillingMode>(
            &properties.billing_mode,
            BillingMode::values(),
        )?)
        .set_attribute_definitions(Some(attribute_definitions(
            &properties.attribute_definitions,
        )?))
        .set_key_schema(Some(key_schema(&properties.key_schema)?))
        .set_global_secondary_indexes(
            Some(indexes(&properties.global_secondary_indexes)?).filter(|i| !i.is_empty()),
        );
    match request.send().await {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) =>
        {
            return Ok(());
        }
        Err(e) => {
            return Err(TableError::Create {
                table: table_name.to_owned(),
                message: DisplayErrorContext(&e).to_string(),
            });
        }
    }
    client
        .wait_until_table_exists()
        .table_name(table_name)
        .wait(Duration::from_secs(120))
        .await
        .map(|_| ())
        .map_err(|e| TableError::NotActive {
            table: table_name.to_owned(),
            message: DisplayErrorContext(&e).to_string(),
        })
}

fn attribute_definitions(defs: &[AttributeDef]) -> Result<Vec<AttributeDefinition>, TableError> {
    defs.iter()
        .map(|d| {
            AttributeDefinition::builder()
                .attribute_name(&d.attribute_name)
                .attribute_type(parse_enum::<ScalarAttributeType>(
                    &d.attribute_type,
                    ScalarAttributeType::values(),
                )?)
                .build()
                .map_err(definition_error)
        })
        .collect()
}

fn key_schema(defs: &[KeyDef]) -> Result<Vec<KeySchemaElement>, TableError> {
    defs.iter()
        .map(|d| {
            KeySchemaElement::builder()
                .attribute_name(&d.attribute_name)
                .key_type(parse_enum::<KeyType>(&d.key_type, KeyType::values())?)
                .build()
                .map_err(definition_error)
        })
        .collect()
}

fn indexes(defs: &[IndexDef]) -> Result<Vec<GlobalSecondaryIndex>, TableError> {
    defs.iter()
        .map(|d| {
            let projection = Projection::builder()
                .projection_type(parse_enum::<ProjectionType>(
                    &d.projection.projection_type,
                    ProjectionType::values(),
                )?)
                .set_non_key_attributes(
                    Some(d.projection.non_key_attributes.clone()).filter(|a| !a.is_empty()),
                )
                .build();
            GlobalSecondaryIndex::builder()
                .index_name(&d.index_name)
                .set_key_schema(Some(key_schema(&d.key_schema)?))
                .projection(projection)
                .build()
                .map_err(definition_error)
        })
        .collect()
}

/// SDK enums accept any string (as `Unknown`); reject what the API would not know.
fn parse_enum<T: From<&'static str>>(value: &str, known: &[&'static str]) -> Result<T, TableError> {
    known
        .iter()
        .find(|k| **k == value)
        .map(|k| T::from(k))
        .ok_or_else(|| {
            TableError::Definition(format!(
                "unknown value {value:?}, expected one of {known:?}"
            ))
        })
}

fn definition_error(e: impl std::fmt::Display) -> TableError {
    TableError::Definition(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_definition_parses_and_has_the_listing_index() {
        let properties: TableProperties =
            serde_json::from_str(TABLE_DEFINITION).expect("valid definition");
        assert_eq!(properties.billing_mode, "PAY_PER_REQUEST");
        assert_eq!(key_schema(&properties.key_schema).expect("keys").len(), 2);
        assert!(
            properties
                .global_secondary_indexes
                .iter()
                .any(|i| i.index_name == GSI1)
        );
        assert_eq!(
            indexes(&properties.global_secondary_indexes)
                .expect("indexes")
                .len(),
            1
        );
    }
}
