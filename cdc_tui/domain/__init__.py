"""Pure domain model: pipeline spec, status enums, transition table, health rules. No IO."""
