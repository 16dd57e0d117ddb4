from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0007_delivery_inbound_event_ref"),
    ]

    operations = [
        migrations.AddField(
            model_name="delivery",
            name="request_id",
            field=models.CharField(
                blank=True,
                editable=False,
                help_text="X-Request-ID of the API request that created it; its attempts' log "
                "lines carry it.",
                max_length=128,
                null=True,
            ),
        ),
    ]
