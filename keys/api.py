"""Key endpoints: the project's public key (Crypt4GH key file) and key rotation."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

import c4gh
from accounts.sessions import request_kek
from core.client_ip import client_ip
from keys.errors import ProjectKeyMissing
from keys.models import KeyRotation
from projects.selectors import Need, project_get_for_user
from transfers.services.rotation import project_key_rotation_start


class RotationOut(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    status = serializers.CharField()
    files_done = serializers.IntegerField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class ProjectPublicKey(APIView):
    @extend_schema(responses={(200, "text/plain"): OpenApiResponse(
        description="Crypt4GH public key file (PEM armour)")},
        summary="The project's Crypt4GH public key, for the reference crypt4gh tool")
    def get(self, request, project_id):
        project = project_get_for_user(user=request.user, public_id=project_id)
        if not project.public_key:
            raise ProjectKeyMissing()
        response = HttpResponse(c4gh.export_public_key(bytes(project.public_key)),
                                content_type="text/plain")
        response["Content-Disposition"] = f'attachment; filename="{project.public_id}.pub"'
        return response


class ProjectKeyRotation(APIView):
    @extend_schema(responses=RotationOut(many=True), summary="Key rotations of the project")
    def get(self, request, project_id):
        project = project_get_for_user(user=request.user, public_id=project_id, need=Need.STAFF)
        rotations = KeyRotation.objects.filter(project=project).order_by("-started_at")
        return Response(RotationOut(rotations, many=True).data)

    @extend_schema(request=None, responses={202: RotationOut, 409: inline_serializer(
        "RotationRefusedOut", {"detail": serializers.CharField()})},
        summary="Rotate the project key (Unit Admin); runs in the background")
    def post(self, request, project_id):
        project = project_get_for_user(user=request.user, public_id=project_id,
                                       need=Need.UNIT_ADMIN)
        rotation = project_key_rotation_start(project=project, by=request.user,
                                              kek=request_kek(request), ip=client_ip(request))
        rotation.refresh_from_db()
        return Response(RotationOut(rotation).data, status=status.HTTP_202_ACCEPTED)
