# kube9-operator image: a static binary, the CA bundle and a non-root user; no shell.
#
#   docker build -t kube9-operator:dev .
#
# Both stages run image/build-rootfs.sh's output, which the tests build and run the same way
# (tests/chart/test_image.py), since the build machines have no container engine.

FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN image/build-rootfs.sh /rootfs

FROM scratch
COPY --from=build /rootfs/ /
USER 65532:65532
# `kubectl exec … -- kube9-operator query …` finds the binary by name (a scratch image has no
# default PATH).
ENV PATH=/
EXPOSE 8080
ENTRYPOINT ["/kube9-operator"]
