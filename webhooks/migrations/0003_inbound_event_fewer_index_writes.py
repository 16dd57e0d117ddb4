"""Fewer index writes per inbound event (each is inserted once and updated three times: relay,
claim, settle). The endpoint index duplicated the leading column of the unique constraint on
(endpoint, external_id). On PostgreSQL, pages keep room for new row versions, so the relay's and
the claim's updates, which touch no indexed column, can be HOT (no new index entries)."""

from django.db import migrations, models

FILLFACTOR = 70


def set_fillfactor(apps, schema_editor, value=FILLFACTOR):
    if schema_editor.connection.vendor == "postgresql":
        table = schema_editor.quote_name("webhooks_inboundevent")
        schema_editor.execute(f"ALTER TABLE {table} SET (fillfactor = {int(value)})")


def reset_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        table = schema_editor.quote_name("webhooks_inboundevent")
        schema_editor.execute(f"ALTER TABLE {table} RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0002_outbox_help_text"),
    ]

    operations = [
        migrations.AlterField(
            model_name="inboundevent",
            name="endpoint",
            field=models.ForeignKey(
                db_index=False,
                on_delete=models.deletion.PROTECT,
                related_name="events",
                to="webhooks.webhookendpoint",
            ),
        ),
        migrations.RunPython(set_fillfactor, reset_fillfactor),
    ]
