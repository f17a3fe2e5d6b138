from django.http import Http404


def _todo(request, *args, **kwargs):
    raise Http404


plan_create = plan_page = plan_section = plan_archive = plan_delete = milestone_move = _todo
plan_item_add = plan_item = _todo
