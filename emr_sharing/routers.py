"""Database router for operators who configure the HIS as ``DATABASES["his"]``
(``DATABASE_ROUTERS = ["emr_sharing.routers.HisReadOnlyRouter"]``): the ORM never reads, writes,
relates or migrates anything there. The puller reads that alias with raw SELECTs only (his.py)."""

ALIAS = "his"


class HisReadOnlyRouter:
    def db_for_read(self, model, **hints):
        return None  # never chosen by the router; only the puller's raw SELECTs use it

    def db_for_write(self, model, **hints):
        instance = hints.get("instance")
        if instance is not None and getattr(instance._state, "db", None) == ALIAS:
            raise PermissionError("HIS 数据库只读：不能写入")
        return None

    def allow_relation(self, obj1, obj2, **hints):
        if ALIAS in (obj1._state.db, obj2._state.db):
            return False
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return False if db == ALIAS else None
