# Subscriptions get a signing credential in the credentials vault (filled by 0006); an endpoint's
# credential can only be a webhook_signing one.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('credentials', '0002_subscription_signing_purpose'),
        ('webhooks', '0004_endpoint_tolerance'),
    ]

    operations = [
        migrations.AddField(
            model_name='subscription',
            name='signing_credential',
            field=models.OneToOneField(blank=True, editable=False, help_text="Its signing secrets: a subscription_signing credential (scope 'subscription:<id>'), rotated only through this subscription.", null=True, on_delete=django.db.models.deletion.PROTECT, related_name='subscription', to='credentials.credential'),
        ),
        migrations.AlterField(
            model_name='webhookendpoint',
            name='credential',
            field=models.ForeignKey(help_text='The webhook_signing credential; every unexpired version is tried.', limit_choices_to={'purpose': 'webhook_signing'}, on_delete=django.db.models.deletion.PROTECT, related_name='webhook_endpoints', to='credentials.credential'),
        ),
    ]
