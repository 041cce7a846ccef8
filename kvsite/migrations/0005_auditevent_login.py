"""AuditEvent.Action gains LOGIN: password sign-ins, successful or refused."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('kvsite', '0004_apikey_account_per_key'),
    ]

    operations = [
        migrations.AlterField(
            model_name='auditevent',
            name='action',
            field=models.CharField(choices=[('READ', 'Read'), ('WRITE', 'Write'), ('DELETE', 'Delete'), ('ROTATE', 'Rotate'), ('ROLLBACK', 'Rollback'), ('REVEAL', 'Reveal'), ('LOGIN', 'Login')], max_length=8),
        ),
    ]
