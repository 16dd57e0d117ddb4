# A credential purpose for subscription signing secrets, owned by their subscription (webhooks).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('credentials', '0001_initial'),
    ]

    operations = [
        migrations.AlterField(
            model_name='credential',
            name='purpose',
            field=models.CharField(choices=[('api', 'API access'), ('webhook_signing', 'Webhook signing'), ('subscription_signing', 'Subscription signing (owned)')], default='api', max_length=32),
        ),
    ]
