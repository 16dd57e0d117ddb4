# Subscription secrets now live in the credentials vault (moved by 0006).

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('webhooks', '0006_subscription_secrets_to_vault'),
    ]

    operations = [
        migrations.DeleteModel(
            name='SubscriptionSecret',
        ),
    ]
